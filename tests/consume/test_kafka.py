"""What is particular to Kafka, on the real (Tansu) broker: offsets are committed up to the
oldest message not acknowledged, a held message is fetched again after the ack wait, a topic
that does not exist is named, and aiokafka stays behind its typed wrapper."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from monitor.consume.source import Message
from monitor.errors import BrokerError
from tests.consume.brokers import KafkaBroker
from tests.consume.conftest import source_options, started
from tests.support.kafka import Tansu

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kafka(tansu: Tansu) -> KafkaBroker:
    return KafkaBroker(tansu.url)


def one_partition(kafka: KafkaBroker) -> str:
    topic = kafka.new_topic()
    asyncio.run(kafka.create(topic, partitions=1))
    return topic


def test_the_committed_offset_stops_at_the_oldest_message_not_acknowledged(
    kafka: KafkaBroker,
) -> None:
    topic = one_partition(kafka)

    async def scenario() -> tuple[int, int, list[Message]]:
        await kafka.publish_many(topic, [b"%d" % i for i in range(5)])
        source = await started(source_options(kafka, topic))
        messages = await source.fetch(10, 2.0)
        await source.ack(messages[1:])  # everything but the first
        held_back = await kafka.unacked(topic, "g")
        await source.ack(messages[:1])
        after = await kafka.unacked(topic, "g")
        await source.close()
        return held_back, after, messages

    held_back, after, messages = asyncio.run(scenario())
    assert [m.value for m in messages] == [b"0", b"1", b"2", b"3", b"4"]
    assert [m.id for m in messages] == [f"{topic}:0:{i}" for i in range(5)]
    assert held_back == 5  # offset 0 is not acked: nothing after it may be committed
    assert after == 0


def test_a_message_held_past_the_ack_wait_is_fetched_again_with_the_same_id(
    kafka: KafkaBroker,
) -> None:
    topic = one_partition(kafka)

    async def scenario() -> tuple[list[Message], list[Message], list[Message]]:
        await kafka.publish_many(topic, [b"a", b"b", b"c"])
        source = await started(source_options(kafka, topic, ack_wait_seconds=0.3))
        first = await source.fetch(3, 2.0)  # returns as soon as it has all three
        soon = await source.fetch(10, 0.1)  # within the ack wait: nothing new
        await asyncio.sleep(0.4)
        again = await source.fetch(3, 2.0)
        await source.ack(again)
        await source.close()
        return first, soon, again

    first, soon, again = asyncio.run(scenario())
    assert soon == []
    assert [m.id for m in again] == [m.id for m in first]
    assert asyncio.run(kafka.unacked(topic, "g")) == 0


def test_a_topic_that_does_not_exist_is_named_at_start(kafka: KafkaBroker) -> None:
    missing = kafka.new_topic()
    with pytest.raises(BrokerError, match=re.escape(missing)):
        asyncio.run(started(source_options(kafka, missing)))


def test_only_the_wrapper_imports_aiokafka() -> None:
    importers = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "monitor").rglob("*.py")
        if re.search(r"^\s*(import|from)\s+aiokafka\b", p.read_text(), re.MULTILINE)
    )
    assert importers == ["monitor/consume/kafka_client.py"]
