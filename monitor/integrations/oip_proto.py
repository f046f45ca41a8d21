"""Open Inference Protocol V2 protobuf messages (``inference.ModelInferRequest`` and
``ModelInferResponse``), as Seldon Core 2 writes them to Kafka, and their V2 JSON form.

Why declared here: protobuf's Python runtime cannot read ``.proto`` text (that is protoc's job)
and no small package ships these messages compiled (tritonclient needs grpcio, MLServer is a
whole server; generated ``_pb2`` code ties us to the protobuf version that generated it). So the
messages are declared as descriptor data, in a pool of their own (no clash with a tritonclient
in the same process), and protobuf does all the decoding. The spec is vendored beside this
module (``proto/open_inference_grpc.proto``, Apache-2.0, from kserve/open-inference-protocol);
``tests/integrations/test_oip_proto.py`` compiles it with protoc and checks that these
declarations say the same, field for field.
"""

from __future__ import annotations

import struct
from functools import cache
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from monitor.errors import MalformedBody, Problem

PACKAGE = "inference"
FILE = "open_inference_grpc.proto"
REQUEST = f"{PACKAGE}.ModelInferRequest"
RESPONSE = f"{PACKAGE}.ModelInferResponse"

_F = descriptor_pb2.FieldDescriptorProto
_T = {
    "bool": _F.TYPE_BOOL,
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}
# (name, number, type or message name, repeated)
Field = tuple[str, int, str, bool]
_PARAMETERS = "map<InferParameter>"
_PARAMETER = f".{PACKAGE}.InferParameter"


def _add_field(msg: descriptor_pb2.DescriptorProto, scope: str, spec: Field) -> None:
    name, number, kind, repeated = spec
    field = msg.field.add(name=name, number=number)
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if kind == _PARAMETERS:  # map<string, InferParameter>: a nested entry type, as protoc makes
        entry = msg.nested_type.add(name="ParametersEntry")
        entry.options.map_entry = True
        for entry_field in [("key", 1, "string", False), ("value", 2, _PARAMETER, False)]:
            _add_field(entry, f"{scope}.ParametersEntry", entry_field)
        field.label = _F.LABEL_REPEATED
        field.type = _F.TYPE_MESSAGE
        field.type_name = f".{scope}.ParametersEntry"
    elif kind in _T:
        field.type = _T[kind]
    else:
        field.type = _F.TYPE_MESSAGE
        field.type_name = kind


def _message(
    container: RepeatedCompositeFieldContainer[descriptor_pb2.DescriptorProto],
    scope: str,
    name: str,
    fields: list[Field],
) -> descriptor_pb2.DescriptorProto:
    """Add message ``name`` to ``container`` (a file's or a message's list of messages)."""
    msg = container.add(name=name)
    for spec in fields:
        _add_field(msg, f"{scope}.{name}", spec)
    return msg


def _tensor_fields() -> list[Field]:
    return [
        ("name", 1, "string", False),
        ("datatype", 2, "string", False),
        ("shape", 3, "int64", True),
        ("parameters", 4, _PARAMETERS, False),
        ("contents", 5, ".inference.InferTensorContents", False),
    ]


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The messages of the spec that Seldon's Kafka topics carry, as protoc would describe them."""
    f = descriptor_pb2.FileDescriptorProto(name=FILE, package=PACKAGE, syntax="proto3")
    request = _message(f.message_type, PACKAGE, "ModelInferRequest", [])
    _message(request.nested_type, REQUEST, "InferInputTensor", _tensor_fields())
    _message(
        request.nested_type,
        REQUEST,
        "InferRequestedOutputTensor",
        [("name", 1, "string", False), ("parameters", 2, _PARAMETERS, False)],
    )
    for spec in [
        ("model_name", 1, "string", False),
        ("model_version", 2, "string", False),
        ("id", 3, "string", False),
        ("parameters", 4, _PARAMETERS, False),
        ("inputs", 5, f".{REQUEST}.InferInputTensor", True),
        ("outputs", 6, f".{REQUEST}.InferRequestedOutputTensor", True),
        ("raw_input_contents", 7, "bytes", True),
    ]:
        _add_field(request, REQUEST, spec)
    response = _message(f.message_type, PACKAGE, "ModelInferResponse", [])
    _message(response.nested_type, RESPONSE, "InferOutputTensor", _tensor_fields())
    for spec in [
        ("model_name", 1, "string", False),
        ("model_version", 2, "string", False),
        ("id", 3, "string", False),
        ("parameters", 4, _PARAMETERS, False),
        ("outputs", 5, f".{RESPONSE}.InferOutputTensor", True),
        ("raw_output_contents", 6, "bytes", True),
    ]:
        _add_field(response, RESPONSE, spec)
    parameter = _message(
        f.message_type,
        PACKAGE,
        "InferParameter",
        [
            ("bool_param", 1, "bool", False),
            ("int64_param", 2, "int64", False),
            ("string_param", 3, "string", False),
            ("double_param", 4, "double", False),
            ("uint64_param", 5, "uint64", False),
        ],
    )
    parameter.oneof_decl.add(name="parameter_choice")
    for field in parameter.field:
        field.oneof_index = 0
    _message(
        f.message_type,
        PACKAGE,
        "InferTensorContents",
        [
            ("bool_contents", 1, "bool", True),
            ("int_contents", 2, "int32", True),
            ("int64_contents", 3, "int64", True),
            ("uint_contents", 4, "uint32", True),
            ("uint64_contents", 5, "uint64", True),
            ("fp32_contents", 6, "float", True),
            ("fp64_contents", 7, "double", True),
            ("bytes_contents", 8, "bytes", True),
        ],
    )
    return f


@cache
def _classes() -> tuple[type[message.Message], type[message.Message]]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_descriptor())
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(REQUEST)),
        message_factory.GetMessageClass(pool.FindMessageTypeByName(RESPONSE)),
    )


def request_class() -> type[message.Message]:
    return _classes()[0]


def response_class() -> type[message.Message]:
    return _classes()[1]


# -- protobuf -> V2 JSON ------------------------------------------------------------------------

# datatype -> the InferTensorContents field that holds it, and its raw (little-endian) dtype
_CONTENTS = {
    "BOOL": ("bool_contents", "?"),
    "INT8": ("int_contents", "<i1"),
    "INT16": ("int_contents", "<i2"),
    "INT32": ("int_contents", "<i4"),
    "INT64": ("int64_contents", "<i8"),
    "UINT8": ("uint_contents", "<u1"),
    "UINT16": ("uint_contents", "<u2"),
    "UINT32": ("uint_contents", "<u4"),
    "UINT64": ("uint64_contents", "<u8"),
    "FP16": ("", "<f2"),  # raw only: the spec has no 16-bit contents field
    "BF16": ("", ""),
    "FP32": ("fp32_contents", "<f4"),
    "FP64": ("fp64_contents", "<f8"),
    "BYTES": ("bytes_contents", ""),
}


def _bad(field: str, problem: str) -> MalformedBody:
    return MalformedBody(f"{field} {problem}", [Problem(problem, field=field)])


def _raw_values(raw: bytes, datatype: str, field: str) -> list[Any]:
    if datatype == "BYTES":  # each element: a 4-byte little-endian length, then the bytes
        out: list[Any] = []
        pos = 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise _bad(field, "holds a truncated BYTES element")
            (n,) = struct.unpack_from("<I", raw, pos)
            if pos + 4 + n > len(raw):
                raise _bad(field, "holds a truncated BYTES element")
            out.append(raw[pos + 4 : pos + 4 + n].decode("utf-8", "replace"))
            pos += 4 + n
        return out
    if datatype == "BF16":  # the upper half of an FP32
        if len(raw) % 2:
            raise _bad(field, "has an odd number of bytes for BF16")
        halves = np.frombuffer(raw, dtype="<u2").astype("<u4") << 16
        widened: list[Any] = halves.view("<f4").astype(float).tolist()
        return widened
    dtype = np.dtype(_CONTENTS[datatype][1])
    if len(raw) % dtype.itemsize:
        raise _bad(field, f"has {len(raw)} bytes, not a whole number of {datatype} values")
    return np.frombuffer(raw, dtype=dtype).tolist()  # type: ignore[no-any-return]


def _tensor(t: Any, raw: bytes | None, field: str) -> dict[str, Any]:
    datatype = str(t.datatype)
    if datatype not in _CONTENTS:
        raise _bad(f"{field}.datatype", f"must be one of {', '.join(sorted(_CONTENTS))}")
    if raw is not None:
        data = _raw_values(raw, datatype, f"{field} raw contents")
    else:
        values = getattr(t.contents, _CONTENTS[datatype][0]) if _CONTENTS[datatype][0] else []
        data = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    return {"name": t.name, "shape": list(t.shape), "datatype": datatype, "data": data}


def _tensors(tensors: Any, raws: Any, field: str) -> list[dict[str, Any]]:
    if len(raws) and len(raws) != len(tensors):
        raise _bad(field, f"has {len(raws)} raw contents for {len(tensors)} tensors")
    return [
        _tensor(t, raws[i] if len(raws) else None, f"{field}[{i}]") for i, t in enumerate(tensors)
    ]


def _parse(kind: type[message.Message], value: bytes, what: str) -> Any:
    msg = kind()
    try:
        msg.ParseFromString(value)
    except message.DecodeError as exc:
        raise _bad("message", f"is not a protobuf {what}: {exc}") from exc
    return msg


def request_json(value: bytes) -> dict[str, Any]:
    """A serialized ``ModelInferRequest`` as the V2 JSON request it stands for."""
    req = _parse(request_class(), value, "ModelInferRequest")
    body: dict[str, Any] = {"inputs": _tensors(req.inputs, req.raw_input_contents, "inputs")}
    if req.id:
        body["id"] = req.id
    return body


def response_json(value: bytes) -> dict[str, Any]:
    """A serialized ``ModelInferResponse`` as the V2 JSON response it stands for."""
    resp = _parse(response_class(), value, "ModelInferResponse")
    body: dict[str, Any] = {"outputs": _tensors(resp.outputs, resp.raw_output_contents, "outputs")}
    if resp.model_version:
        body["model_version"] = resp.model_version
    if resp.id:
        body["id"] = resp.id
    return body
