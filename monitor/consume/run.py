"""``monitor consume``: wire a source, a decoder and the ingest service, and run until told to
stop (SIGINT / SIGTERM finish the batch in hand, ack it, and exit)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from prometheus_client import CollectorRegistry, start_http_server
from sqlalchemy import Engine

from monitor.config import Settings
from monitor.consume.loop import Consumer, LoopSettings, Store
from monitor.consume.metrics import ConsumerMetrics
from monitor.consume.seldon import PairingStore, SeldonDecoder, is_seldon_topic, models_of
from monitor.consume.source import Source, SourceOptions, open_source
from monitor.consume.units import Decoder, RecordsDecoder
from monitor.errors import ConfigError
from monitor.ingest.service import IngestService
from monitor.ingest_metrics import IngestMetrics
from monitor.integrations.kserve import KServeReceiver
from monitor.services import limits_from
from monitor.storage.engine import make_engine
from monitor.storage.models import ModelStore
from monitor.storage.partitions import Partitions

log = logging.getLogger(__name__)


FORMATS = ("auto", "records", "seldon")


@dataclass(frozen=True)
class ConsumeOptions:
    source: SourceOptions
    loop: LoopSettings = field(default_factory=LoopSettings)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 9108  # None: no /metrics endpoint of its own
    format: str = "auto"  # records (our JSON), seldon (Seldon Core 2 topics), auto: by topic

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}")

    def payload_format(self) -> str:
        if self.format != "auto":
            return self.format
        seldon = [is_seldon_topic(t) for t in self.source.topics]
        if any(seldon) and not all(seldon):
            raise ConfigError(
                "some topics are Seldon model topics and some are not: consume them with "
                "two commands, or say --format"
            )
        return "seldon" if all(seldon) else "records"


def build_store(
    settings: Settings,
    engine: Engine,
    registry: CollectorRegistry,
    payload: str,
    kind: str,
    topics: Sequence[str] = (),
) -> tuple[Decoder, Store]:
    """The decoder and the store for a payload format, on the ingest path only: the consumer
    exports its own counters, not the results the service's /metrics already serves (two
    targets must not export the same series)."""
    models = ModelStore(engine)
    metrics = IngestMetrics(registry)
    ingest = IngestService(engine, models, Partitions(engine), limits_from(settings), metrics)
    if payload == "seldon":
        decoder = SeldonDecoder(models_of(topics))
        return decoder, PairingStore(KServeReceiver(ingest, models, settings, metrics))
    return RecordsDecoder(), partial(ingest.predictions, kind=f"consumer_{kind}")


async def consume(
    source: Source,
    decoder: Decoder,
    store: Store,
    metrics: ConsumerMetrics,
    settings: LoopSettings,
    stop: asyncio.Event,
) -> None:
    """Run one consumer until ``stop`` is set; the source is closed on the way out."""
    await source.start()
    try:
        await Consumer(source, decoder, store, metrics, settings).run(stop)
    finally:
        await source.close()


async def _main(settings: Settings, options: ConsumeOptions, url: str) -> None:
    registry = CollectorRegistry()
    engine = make_engine(url, pool_size=2, statement_timeout_ms=settings.statement_timeout_ms)
    payload = options.payload_format()  # before a source exists: a bad choice leaks nothing
    source = open_source(options.source)
    decoder, store = build_store(
        settings, engine, registry, payload, source.kind, options.source.topics
    )
    metrics = ConsumerMetrics(registry)
    server = None
    if options.metrics_port is not None:
        server, _thread = start_http_server(
            options.metrics_port, addr=options.metrics_host, registry=registry
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await consume(source, decoder, store, metrics, options.loop, stop)
    finally:
        if server is not None:
            server.shutdown()
        engine.dispose()


def run_consume(settings: Settings, options: ConsumeOptions) -> None:
    from monitor.runtime import database_url
    from monitor.storage import migrate

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with database_url(settings) as url:
        engine = make_engine(url, pool_size=1)
        migrate.upgrade(engine)
        engine.dispose()
        log.info("consuming %s from %s", ", ".join(options.source.topics), options.source.url)
        asyncio.run(_main(settings, options, url))
