"""Fixtures for the consumer tests: each real broker, a fresh topic, a consumer to drive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from prometheus_client import CollectorRegistry

from monitor.consume.loop import Backoff, Consumer, LoopSettings
from monitor.consume.metrics import ConsumerMetrics
from monitor.consume.source import Source, SourceOptions, open_source
from monitor.consume.units import Decoder, RecordsDecoder
from monitor.ingest.service import IngestService
from tests.consume.brokers import (
    Broker,
    KafkaBroker,
    NatsBroker,
    RedisBroker,
    require_reachable,
)
from tests.support.kafka import Tansu, start_tansu

FAST = LoopSettings(
    batch_size=100, fetch_timeout_seconds=0.2, lag_every_seconds=0.0, backoff=Backoff(0.1, 0.5)
)


@pytest.fixture(scope="session")
def tansu() -> Iterator[Tansu]:
    broker = start_tansu()
    yield broker
    broker.stop()


@pytest.fixture(params=["nats", "redis", "kafka"])
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    real: Broker
    if request.param == "kafka":
        real = KafkaBroker(request.getfixturevalue("tansu").url)
    else:
        real = NatsBroker() if request.param == "nats" else RedisBroker()
        require_reachable(real.url)
    yield real
    asyncio.run(real.cleanup())


@pytest.fixture
def topic(broker: Broker) -> str:
    name = broker.new_topic()
    asyncio.run(broker.create(name))
    return name


def source_options(broker: Broker, topic: str, **over: object) -> SourceOptions:
    options = {
        "url": broker.url,
        "topics": (topic,),
        "group": "g",
        "consumer": "c1",
        "ack_wait_seconds": 1.0,
        **over,
    }
    return SourceOptions(**options)  # type: ignore[arg-type]


def make_consumer(
    source: Source,
    ingest: IngestService,
    registry: CollectorRegistry,
    decoder: Decoder | None = None,
) -> Consumer:
    store = partial(ingest.predictions, kind=f"consumer_{source.kind}")
    metrics = ConsumerMetrics(registry)
    return Consumer(source, decoder or RecordsDecoder(), store, metrics, FAST)


async def started(options: SourceOptions) -> Source:
    source = open_source(options)
    await source.start()
    return source


async def drain(consumer: Consumer, done: Callable[[], bool], seconds: float = 20.0) -> None:
    """Step the consumer until ``done()``; fail if that takes longer than ``seconds``."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the consumer did not get there in time"
        await consumer.step()
