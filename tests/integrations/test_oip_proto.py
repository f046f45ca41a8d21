"""The Open Inference Protocol messages ml-monitor declares are the spec's: the vendored
``.proto`` compiled by protoc (grpcio-tools) describes the same fields, and messages built with
the compiled classes (as Seldon's producer builds them) decode to the V2 JSON they stand for."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

from monitor.errors import MalformedBody
from monitor.integrations import oip_proto

PROTO = Path(oip_proto.__file__).parent / "proto" / oip_proto.FILE
MESSAGES = ("ModelInferRequest", "ModelInferResponse", "InferParameter", "InferTensorContents")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorProto:
    out = tmp_path_factory.mktemp("oip") / "oip.pb"
    code = protoc.main(["protoc", f"-I{PROTO.parent}", f"--descriptor_set_out={out}", PROTO.name])
    assert code == 0
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    assert [f.name for f in files] == [oip_proto.FILE]
    return files[0]


def _without_json_names(msg: descriptor_pb2.DescriptorProto) -> descriptor_pb2.DescriptorProto:
    copy = descriptor_pb2.DescriptorProto()
    copy.CopyFrom(msg)
    stack = [copy]
    while stack:
        m = stack.pop()
        for f in m.field:
            f.ClearField("json_name")
        stack.extend(m.nested_type)
    return copy


def test_the_declared_messages_are_the_specs_field_for_field(
    compiled: descriptor_pb2.FileDescriptorProto,
) -> None:
    spec = {m.name: _without_json_names(m) for m in compiled.message_type}
    declared = {m.name: m for m in oip_proto.file_descriptor().message_type}
    assert sorted(declared) == sorted(MESSAGES)
    for name in MESSAGES:
        assert declared[name] == spec[name], name
    assert compiled.package == oip_proto.PACKAGE
    assert compiled.syntax == "proto3"


def spec_classes(compiled: descriptor_pb2.FileDescriptorProto) -> tuple[Any, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(compiled)
    return tuple(  # type: ignore[return-value]
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"inference.{n}"))
        for n in ("ModelInferRequest", "ModelInferResponse")
    )


def test_typed_contents_decode_to_v2_json(compiled: descriptor_pb2.FileDescriptorProto) -> None:
    Request, Response = spec_classes(compiled)
    req = Request(model_name="iris", id="r-1")
    tensor = req.inputs.add(name="predict", datatype="FP32", shape=[2, 2])
    tensor.contents.fp32_contents.extend([1.5, 2.0, 3.25, 4.0])
    req.parameters["content_type"].string_param = "np"
    resp = Response(model_name="iris", model_version="3", id="r-1")
    out = resp.outputs.add(name="predict", datatype="INT64", shape=[2, 1])
    out.contents.int64_contents.extend([1, 2])
    label = resp.outputs.add(name="label", datatype="BYTES", shape=[2])
    label.contents.bytes_contents.extend([b"setosa", b"virginica"])

    assert oip_proto.request_json(req.SerializeToString()) == {
        "id": "r-1",
        "inputs": [{"name": "predict", "shape": [2, 2], "datatype": "FP32",
                    "data": [1.5, 2.0, 3.25, 4.0]}],
    }  # fmt: skip
    assert oip_proto.response_json(resp.SerializeToString()) == {
        "id": "r-1",
        "model_version": "3",
        "outputs": [
            {"name": "predict", "shape": [2, 1], "datatype": "INT64", "data": [1, 2]},
            {"name": "label", "shape": [2], "datatype": "BYTES", "data": ["setosa", "virginica"]},
        ],
    }


def test_raw_contents_decode_by_datatype(compiled: descriptor_pb2.FileDescriptorProto) -> None:
    Request, _ = spec_classes(compiled)
    req = Request(model_name="m")
    floats = np.array([0.5, -1.25, 3.0], dtype="<f4")
    ints = np.array([7, -8, 9], dtype="<i2")
    halves = np.array([1.5, 2.0, -0.25], dtype="<f2")
    strings = [b"a", b"", b"xyz"]
    bf16 = (np.array([1.0, -2.5, 0.15625], dtype="<f4").view("<u4") >> 16).astype("<u2")
    for name, dtype in [("f", "FP32"), ("i", "INT16"), ("h", "FP16"), ("s", "BYTES"),
                        ("b", "BF16")]:  # fmt: skip
        req.inputs.add(name=name, datatype=dtype, shape=[3])
    req.raw_input_contents.extend([
        floats.tobytes(), ints.tobytes(), halves.tobytes(),
        b"".join(struct.pack("<I", len(s)) + s for s in strings), bf16.tobytes(),
    ])  # fmt: skip
    data = {t["name"]: t["data"] for t in oip_proto.request_json(req.SerializeToString())["inputs"]}
    assert data == {
        "f": [0.5, -1.25, 3.0],
        "i": [7, -8, 9],
        "h": [1.5, 2.0, -0.25],
        "s": ["a", "", "xyz"],
        "b": [1.0, -2.5, 0.15625],
    }


def test_what_is_not_a_request_is_a_malformed_body(
    compiled: descriptor_pb2.FileDescriptorProto,
) -> None:
    Request, _ = spec_classes(compiled)
    with pytest.raises(MalformedBody, match="not a protobuf ModelInferRequest"):
        oip_proto.request_json(b"\xff\xff\xff not protobuf")
    req = Request(model_name="m")
    req.inputs.add(name="x", datatype="FP32", shape=[2])
    req.raw_input_contents.append(b"\x00\x00\x80")  # 3 bytes: not whole FP32 values
    with pytest.raises(MalformedBody, match="not a whole number of FP32 values"):
        oip_proto.request_json(req.SerializeToString())
    two = Request(model_name="m")
    two.inputs.add(name="x", datatype="FP32", shape=[1])
    two.inputs.add(name="y", datatype="FP32", shape=[1])
    two.raw_input_contents.append(b"\x00\x00\x80\x3f")
    with pytest.raises(MalformedBody, match="1 raw contents for 2 tensors"):
        oip_proto.request_json(two.SerializeToString())
