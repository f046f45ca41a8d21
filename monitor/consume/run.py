"""``monitor consume``: wire a source, a decoder and the ingest service, and run until told to
stop (SIGINT / SIGTERM finish the batch in hand, ack it, and exit)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from functools import partial

from prometheus_client import CollectorRegistry, start_http_server
from sqlalchemy import Engine

from monitor.config import Settings
from monitor.consume.loop import Consumer, LoopSettings
from monitor.consume.metrics import ConsumerMetrics
from monitor.consume.source import Source, SourceOptions, open_source
from monitor.consume.units import Decoder, RecordsDecoder
from monitor.ingest.service import IngestService
from monitor.ingest_metrics import IngestMetrics
from monitor.services import limits_from
from monitor.storage.engine import make_engine
from monitor.storage.models import ModelStore
from monitor.storage.partitions import Partitions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumeOptions:
    source: SourceOptions
    loop: LoopSettings = field(default_factory=LoopSettings)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 9108  # None: no /metrics endpoint of its own


def build_ingest(settings: Settings, engine: Engine, registry: CollectorRegistry) -> IngestService:
    """Only the ingest path: the consumer exports its own counters, not the results the
    service's /metrics already serves (two targets must not export the same series)."""
    models = ModelStore(engine)
    return IngestService(
        engine, models, Partitions(engine), limits_from(settings), IngestMetrics(registry)
    )


async def consume(
    source: Source,
    decoder: Decoder,
    ingest: IngestService,
    metrics: ConsumerMetrics,
    settings: LoopSettings,
    stop: asyncio.Event,
) -> None:
    """Run one consumer until ``stop`` is set; the source is closed on the way out."""
    store = partial(ingest.predictions, kind=f"consumer_{source.kind}")
    await source.start()
    try:
        await Consumer(source, decoder, store, metrics, settings).run(stop)
    finally:
        await source.close()


async def _main(settings: Settings, options: ConsumeOptions, url: str) -> None:
    registry = CollectorRegistry()
    engine = make_engine(url, pool_size=2, statement_timeout_ms=settings.statement_timeout_ms)
    ingest = build_ingest(settings, engine, registry)
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
        source = open_source(options.source)
        await consume(source, RecordsDecoder(), ingest, metrics, options.loop, stop)
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
