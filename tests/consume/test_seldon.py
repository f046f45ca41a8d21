"""Seldon Core 2 topics through ``monitor consume`` on a real Kafka (Tansu) broker: messages as
Seldon's gateways write them (protobuf V2 values built with the spec's compiled classes, key
``<model>.<request id>``, headers ``pipeline`` and ``x-request-id``), paired in PostgreSQL in
either order, stored once when replayed, poison to the dead-letter topic."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from monitor.consume.loop import Consumer
from monitor.consume.metrics import ConsumerMetrics
from monitor.consume.seldon import PairingStore, SeldonDecoder, is_seldon_topic, models_of
from monitor.integrations import oip_proto
from monitor.schemas import ModelConfig
from monitor.services import Services
from tests.api.helpers import count
from tests.consume.brokers import KafkaBroker
from tests.consume.conftest import FAST, drain, source_options, started
from tests.integrations import fixtures as fx
from tests.support.kafka import Tansu

PROTO = Path(oip_proto.__file__).parent / "proto" / oip_proto.FILE
MODEL = "iris"
INPUTS = f"seldon.default.model.{MODEL}.inputs"
OUTPUTS = f"seldon.default.model.{MODEL}.outputs"


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """ModelInferRequest / ModelInferResponse compiled by protoc from the spec, independent of
    the declarations ml-monitor decodes with."""
    out = tmp_path_factory.mktemp("oip") / "oip.pb"
    assert (
        protoc.main(["protoc", f"-I{PROTO.parent}", f"--descriptor_set_out={out}", PROTO.name]) == 0
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0])
    return tuple(  # type: ignore[return-value]
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"inference.{n}"))
        for n in ("ModelInferRequest", "ModelInferResponse")
    )


@pytest.fixture
def kafka(tansu: Tansu) -> KafkaBroker:
    return KafkaBroker(tansu.url)


@pytest.fixture
def topics(kafka: KafkaBroker) -> tuple[str, str]:
    """Each test its own namespace, so its topics are fresh."""
    ns = f"ns{uuid.uuid4().hex[:8]}"
    names = (INPUTS.replace(".default.", f".{ns}."), OUTPUTS.replace(".default.", f".{ns}."))
    for name in names:
        asyncio.run(kafka.create(name))
    return names


@pytest.fixture
def iris(services: Services) -> None:
    services.models.apply(MODEL, ModelConfig.model_validate({"input_names": fx.IRIS_INPUT_NAMES}))


def request_message(spec: tuple[Any, Any], request_id: str, rows: list[list[float]]) -> bytes:
    req = spec[0](model_name=MODEL, model_version="1")
    tensor = req.inputs.add(name="predict", datatype="FP32", shape=[len(rows), 4])
    tensor.contents.fp32_contents.extend([v for row in rows for v in row])
    return bytes(req.SerializeToString())


def response_message(spec: tuple[Any, Any], request_id: str, labels: list[int]) -> bytes:
    resp = spec[1](model_name=f"{MODEL}_1", model_version="1", id=request_id)
    tensor = resp.outputs.add(name="predict", datatype="INT64", shape=[len(labels), 1])
    tensor.contents.int64_contents.extend(labels)
    return bytes(resp.SerializeToString())


def seldon_headers(request_id: str) -> dict[str, str]:
    # what the pipeline gateway adds (resources.SeldonPipelineHeader, util.RequestIdHeader);
    # the model gateway copies the request's headers onto the response
    return {"pipeline": MODEL, "x-request-id": request_id}


async def publish(kafka: KafkaBroker, topic: str, request_id: str, value: bytes,
                  **extra: str) -> None:  # fmt: skip
    await kafka.publish(
        topic, value, {**seldon_headers(request_id), **extra}, key=f"{MODEL}.{request_id}".encode()
    )


def consumer(services: Services, kafka: KafkaBroker, topics: tuple[str, ...],
             registry: CollectorRegistry) -> Any:  # fmt: skip
    async def make() -> Consumer:
        source = await started(source_options(kafka, topics[0], topics=topics))
        store = PairingStore(services.kserve)
        decoder = SeldonDecoder(models_of(topics))
        return Consumer(source, decoder, store, ConsumerMetrics(registry), FAST)

    return make()


def stored(services: Services) -> list[tuple[Any, ...]]:
    with services.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT prediction_id, num, prediction, status, model_version "
                 "FROM predictions ORDER BY prediction_id")
        ).all()  # fmt: skip
    return [tuple(r) for r in rows]


ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]


@pytest.mark.usefixtures("iris")
def test_halves_in_either_order_become_one_prediction_per_row(
    spec: tuple[Any, Any], kafka: KafkaBroker, topics: tuple[str, str], services: Services
) -> None:
    inputs, outputs = topics
    registry = CollectorRegistry()

    async def scenario() -> None:
        await publish(kafka, inputs, "req-a", request_message(spec, "req-a", ROWS))
        await publish(kafka, outputs, "req-a", response_message(spec, "req-a", [0, 1]))
        # response first: it waits in PostgreSQL for its request
        await publish(kafka, outputs, "req-b", response_message(spec, "req-b", [2]))
        await publish(kafka, inputs, "req-b", request_message(spec, "req-b", ROWS[:1]))
        c = await consumer(services, kafka, topics, registry)
        await drain(c, lambda: count(services.engine, "predictions") == 3)
        await c.step()
        await c.source.close()
        for topic in topics:
            assert await kafka.unacked(topic, "g") == 0

    asyncio.run(scenario())
    rows = stored(services)
    names = services.models.require(MODEL).schema.numeric_names
    got = [(r[0], dict(zip(names, r[1], strict=True)), r[2], r[3], r[4]) for r in rows]
    expected = [
        ("req-a:0", dict(zip(fx.IRIS_INPUT_NAMES, ROWS[0], strict=True)), 0.0, "ok", "1"),
        ("req-a:1", dict(zip(fx.IRIS_INPUT_NAMES, ROWS[1], strict=True)), 1.0, "ok", "1"),
        ("req-b:0", dict(zip(fx.IRIS_INPUT_NAMES, ROWS[0], strict=True)), 2.0, "ok", "1"),
    ]
    assert [(g[0], g[2], g[3], g[4]) for g in got] == [(e[0], e[2], e[3], e[4]) for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert g[1] == pytest.approx(e[1], rel=1e-6)  # FP32 on the wire
    assert count(services.engine, "integration_pending") == 0


@pytest.mark.usefixtures("iris")
def test_a_replayed_topic_is_stored_once(
    spec: tuple[Any, Any], kafka: KafkaBroker, topics: tuple[str, str], services: Services
) -> None:
    inputs, outputs = topics

    async def scenario() -> None:
        for i in range(5):
            rid = f"r{i}"
            await publish(kafka, inputs, rid, request_message(spec, rid, ROWS))
            await publish(kafka, outputs, rid, response_message(spec, rid, [1, 2]))
        first = await consumer(services, kafka, topics, CollectorRegistry())
        await drain(first, lambda: count(services.engine, "predictions") == 10)
        await first.source.close()
        # a new group reads both topics again from the start, as after an offset reset
        replay = await started(
            source_options(kafka, inputs, topics=topics, group="replay", consumer="c9")
        )
        registry = CollectorRegistry()
        again = Consumer(replay, SeldonDecoder(), PairingStore(services.kserve),
                         ConsumerMetrics(registry), FAST)  # fmt: skip
        labels = {"source": "kafka", "topic": inputs}

        def all_acked() -> bool:
            done = registry.get_sample_value("monitor_consumer_messages_total", labels)
            return done == 5

        await drain(again, all_acked)
        await drain(again, lambda: count(services.engine, "integration_pending") == 0)
        await replay.close()

    asyncio.run(scenario())
    assert count(services.engine, "predictions") == 10
    assert count(services.engine, "prediction_keys") == 10


@pytest.mark.usefixtures("iris")
def test_json_values_and_error_outputs_are_read_as_seldon_writes_them(
    spec: tuple[Any, Any], kafka: KafkaBroker, topics: tuple[str, str], services: Services
) -> None:
    inputs, outputs = topics
    json_request = {"inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP64",
                                "data": ROWS[0]}]}  # fmt: skip

    async def scenario() -> None:
        await publish(kafka, inputs, "j1", orjson.dumps(json_request),
                      **{"seldon-infer-type": "json/inferModelRequest"})  # fmt: skip
        await publish(kafka, outputs, "j1", response_message(spec, "j1", [2]))
        await publish(kafka, inputs, "e1", request_message(spec, "e1", ROWS[:1]))
        await publish(kafka, outputs, "e1", response_message(spec, "e1", [0]),
                      **{"seldon-pipeline-errors": ""})  # fmt: skip
        c = await consumer(services, kafka, topics, CollectorRegistry())
        await drain(c, lambda: count(services.engine, "predictions") == 2)
        await c.source.close()

    asyncio.run(scenario())
    assert [(r[0], r[3]) for r in stored(services)] == [("e1:0", "error"), ("j1:0", "ok")]


@pytest.mark.usefixtures("iris")
def test_a_call_on_the_errors_topic_is_stored_as_failed_at_once(
    spec: tuple[Any, Any], kafka: KafkaBroker, topics: tuple[str, str], services: Services
) -> None:
    """What the model gateway writes when the model fails (``produce(..., errorTopic=true)``):
    the request's key and headers plus ``seldon-pipeline-errors: <model>``, the error text as
    the value, on the namespace's ``errors.errors`` topic. Another model's error is skipped."""
    inputs, outputs = topics
    errors = inputs.replace(f".model.{MODEL}.inputs", ".errors.errors")
    asyncio.run(kafka.create(errors))
    failure = b"rpc error: code = Internal desc = builtins.ValueError: cannot reshape array"

    async def scenario() -> None:
        await publish(kafka, inputs, "e1", request_message(spec, "e1", ROWS))
        await publish(kafka, errors, "e1", failure, **{"seldon-pipeline-errors": MODEL})
        await publish(kafka, inputs, "j1", request_message(spec, "j1", ROWS[:1]))
        await publish(kafka, outputs, "j1", response_message(spec, "j1", [1]))
        await publish(kafka, errors, "w1", failure, **{"seldon-pipeline-errors": "wine"})
        registry = CollectorRegistry()
        c = await consumer(services, kafka, (inputs, outputs, errors), registry)
        labels = {"source": "kafka", "topic": errors}

        def errors_acked() -> bool:  # the skipped message too
            return registry.get_sample_value("monitor_consumer_messages_total", labels) == 2

        await drain(c, lambda: count(services.engine, "predictions") == 3)
        await drain(c, errors_acked)
        await c.source.close()

    asyncio.run(scenario())
    assert [(r[0], r[3]) for r in stored(services)] == [
        ("e1:0", "error"),
        ("e1:1", "error"),
        ("j1:0", "ok"),
    ]
    assert count(services.engine, "integration_pending") == 0  # not left to wait for a response
    assert services.models.get("wine") is None


@pytest.mark.usefixtures("iris")
def test_poison_messages_go_to_the_dead_letter_topic_and_do_not_block(
    spec: tuple[Any, Any], kafka: KafkaBroker, topics: tuple[str, str], services: Services
) -> None:
    inputs, outputs = topics
    registry = CollectorRegistry()
    wrong_width = spec[0](model_name=MODEL)
    tensor = wrong_width.inputs.add(name="predict", datatype="FP32", shape=[1, 4])
    tensor.contents.fp32_contents.extend([1.0, 2.0])  # 2 values for a [1, 4] tensor

    async def scenario() -> dict[str, list[tuple[bytes, dict[str, str]]]]:
        await kafka.publish(inputs, b"\xff\xff\xff\xff not a request", {"x-request-id": "bad-1"})
        await publish(kafka, inputs, "bad-2", wrong_width.SerializeToString())
        await kafka.publish(outputs, response_message(spec, "nokey", [1]))  # no id at all
        await publish(kafka, inputs, "ok-1", request_message(spec, "ok-1", ROWS[:1]))
        await publish(kafka, outputs, "ok-1", response_message(spec, "ok-1", [1]))
        c = await consumer(services, kafka, topics, registry)
        await drain(c, lambda: count(services.engine, "predictions") == 1)
        for _ in range(3):
            await c.step()
        await c.source.close()
        for topic in topics:
            assert await kafka.unacked(topic, "g") == 0
        return {t: await kafka.dead_letters(t) for t in topics}

    letters = asyncio.run(scenario())
    on_inputs = {h["x-request-id"]: h for _, h in letters[inputs]}
    assert sorted(on_inputs) == ["bad-1", "bad-2"]
    assert on_inputs["bad-1"]["ml-monitor-reason"] == "undecodable"
    assert "not a protobuf ModelInferRequest" in on_inputs["bad-1"]["ml-monitor-error"]
    assert on_inputs["bad-2"]["ml-monitor-reason"] == "invalid"
    assert "needs 4" in on_inputs["bad-2"]["ml-monitor-error"]
    [(value, headers)] = letters[outputs]
    assert value == response_message(spec, "nokey", [1])  # the original bytes
    assert "x-request-id" in headers["ml-monitor-error"]
    assert [r[0] for r in stored(services)] == ["ok-1:0"]
    labels = {"source": "kafka", "topic": inputs}
    assert registry.get_sample_value("monitor_consumer_dead_lettered_total", labels) == 2


def test_only_whole_topic_names_are_seldon_model_topics() -> None:
    assert is_seldon_topic("seldon.default.model.iris.inputs")
    assert is_seldon_topic("acme.prod.model.fraud.v2.outputs")  # any prefix; dots in names
    assert is_seldon_topic("seldon.default.errors.errors")
    assert models_of(["seldon.a.model.iris.inputs", "seldon.a.errors.errors"]) == {"iris"}
    for topic in ("seldon.default.model.iris.inputs\n", "seldon.default.pipeline.p.inputs",
                  "seldon.default.model.iris.inputs.dlq", "predictions",
                  "seldon.default.errors.errors\n"):  # fmt: skip
        assert not is_seldon_topic(topic), topic
