"""monitor consume against real NATS JetStream and Redis Streams and a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from monitor.consume.source import Message, Source
from monitor.services import Services
from tests.api.helpers import count, record
from tests.consume.brokers import Broker
from tests.consume.conftest import drain, make_consumer, source_options, started


def js(doc: object) -> bytes:
    return orjson.dumps(doc)


def test_single_batched_and_ndjson_messages_are_stored_and_acked(
    broker: Broker, topic: str, services: Services
) -> None:
    registry = CollectorRegistry()

    async def scenario() -> None:
        await broker.publish(topic, js(record(0, prediction_id=None)))
        await broker.publish(topic, js({"predictions": [record(1), record(2)]}))
        await broker.publish(topic, js(record(3)) + b"\n" + js(record(4)) + b"\n")
        source = await started(source_options(broker, topic))
        consumer = make_consumer(source, services.ingest, registry)
        await drain(consumer, lambda: count(services.engine, "predictions") == 5)
        assert await consumer.step() == 0  # nothing more: nothing delivered twice
        await source.close()
        assert await broker.unacked(topic, "g") == 0

    asyncio.run(scenario())
    labels = {"source": broker.kind, "topic": topic}
    assert registry.get_sample_value("monitor_consumer_messages_total", labels) == 3
    assert registry.get_sample_value("monitor_consumer_lag_messages", labels) == 0
    rows = services.registry.get_sample_value(
        "monitor_ingest_rows_total", {"kind": f"consumer_{broker.kind}"}
    )
    assert rows == 5
    # the record sent without an id got one derived from its broker position
    with services.engine.connect() as conn:
        ids = set(conn.execute(text("SELECT prediction_id FROM prediction_keys")).scalars())
    derived = ids - {"p-1", "p-2", "p-3", "p-4"}
    assert len(derived) == 1
    assert derived.pop().startswith(f"{topic}:")


class Crash(Exception):
    """The process dies between the commit and the ack."""


class DiesBeforeAck:
    """The real source, except that the process 'dies' when it is about to ack."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.kind = source.kind

    def __getattr__(self, name: str) -> object:
        return getattr(self.source, name)

    async def ack(self, messages: Sequence[Message]) -> None:
        raise Crash


def test_a_batch_committed_but_not_acked_is_redelivered_and_stored_once(
    broker: Broker, topic: str, services: Services
) -> None:
    n = 40

    async def scenario() -> None:
        await broker.publish_many(topic, [js(record(i, prediction_id=None)) for i in range(n)])
        first = await started(source_options(broker, topic))
        dying = DiesBeforeAck(first)
        with pytest.raises(Crash):
            await make_consumer(dying, services.ingest, CollectorRegistry()).step()
        await first.close()  # the connection goes with the process
        assert count(services.engine, "predictions") == n  # committed ...
        assert await broker.unacked(topic, "g") == n  # ... and not acknowledged

        # another member of the group takes over once the ack wait is over
        second = await started(source_options(broker, topic, consumer="c2"))
        registry = CollectorRegistry()
        consumer = make_consumer(second, services.ingest, registry)
        await drain(
            consumer,
            lambda: (
                registry.get_sample_value(
                    "monitor_consumer_messages_total", {"source": broker.kind, "topic": topic}
                )
                == n
            ),
        )
        await second.close()
        assert await broker.unacked(topic, "g") == 0

    asyncio.run(scenario())
    assert count(services.engine, "predictions") == n
    assert count(services.engine, "prediction_keys") == n


def test_poison_messages_are_dead_lettered_with_their_reason_and_do_not_block(
    broker: Broker, topic: str, services: Services
) -> None:
    registry = CollectorRegistry()
    no_features = {"model": "fraud", "prediction_id": "bad-1", "prediction": 1}

    async def scenario() -> list[tuple[bytes, dict[str, str]]]:
        await broker.publish(topic, js(record(0)))
        await broker.publish(topic, b"{not json")
        await broker.publish(topic, js(no_features))
        await broker.publish(topic, js(record(1)))
        source = await started(source_options(broker, topic))
        consumer = make_consumer(source, services.ingest, registry)
        await drain(consumer, lambda: count(services.engine, "predictions") == 2)
        await consumer.step()
        await source.close()
        assert await broker.unacked(topic, "g") == 0
        return await broker.dead_letters(topic)

    letters = asyncio.run(scenario())
    by_reason = {headers["ml-monitor-reason"]: (value, headers) for value, headers in letters}
    assert sorted(by_reason) == ["invalid", "undecodable"]
    assert by_reason["undecodable"][0] == b"{not json"
    value, headers = by_reason["invalid"]
    assert orjson.loads(value) == no_features  # the original message, unchanged
    assert "features: is required" in headers["ml-monitor-error"]
    assert headers["ml-monitor-source-topic"] == topic
    for reason in ("invalid", "undecodable"):
        labels = {"source": broker.kind, "topic": topic, "reason": reason}
        assert registry.get_sample_value("monitor_consumer_rejected_total", labels) == 1
    published = {"source": broker.kind, "topic": topic}
    assert registry.get_sample_value("monitor_consumer_dead_lettered_total", published) == 2
    assert count(services.engine, "predictions") == 2


def test_without_a_dead_letter_topic_bad_messages_are_skipped_and_counted(
    broker: Broker, topic: str, services: Services
) -> None:
    registry = CollectorRegistry()

    async def scenario() -> None:
        await broker.publish(topic, b"\x00\x01 binary")
        await broker.publish(topic, js(record(0)))
        source = await started(source_options(broker, topic, dead_letter=None))
        consumer = make_consumer(source, services.ingest, registry)
        await drain(consumer, lambda: count(services.engine, "predictions") == 1)
        await consumer.step()
        await source.close()
        assert await broker.unacked(topic, "g") == 0
        assert await broker.dead_letters(topic) == []

    asyncio.run(scenario())
    labels = {"source": broker.kind, "topic": topic, "reason": "undecodable"}
    assert registry.get_sample_value("monitor_consumer_rejected_total", labels) == 1
    published = {"source": broker.kind, "topic": topic}
    assert registry.get_sample_value("monitor_consumer_dead_lettered_total", published) is None
