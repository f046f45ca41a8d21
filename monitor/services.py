"""The application's wiring: the service graph, built once at the top from settings and an engine.

``build_services`` is the one factory: the server, the CLI commands, the demo and the tests
build what they run from it, and hand the narrow parts down (``context`` to jobs and webhook
steps, the ingest services to the API). Nothing below this floor imports it; the API floor
adds what only HTTP needs (the bearer-token verifier) in ``monitor.api.app.create_app``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from monitor.config import Settings
from monitor.exporter import ResultsCollector, exposition
from monitor.ingest.predictions import Limits
from monitor.ingest.reference import ReferenceService
from monitor.ingest.service import IngestService
from monitor.ingest_metrics import IngestMetrics
from monitor.integrations.genai_metrics import TokenMeter
from monitor.integrations.kserve import KServeReceiver
from monitor.integrations.otlp import OtlpReceiver
from monitor.jobs.context import JobContext
from monitor.storage.database import Database
from monitor.storage.engine import make_engine
from monitor.storage.models import ModelRecord, ModelStore
from monitor.storage.partitions import Partitions
from monitor.storage.summaries import results_summary
from monitor.webhooks.metrics import register_webhook_metrics


@dataclass
class Services:
    settings: Settings
    engine: Engine
    db: Database
    registry: CollectorRegistry
    models: ModelStore
    partitions: Partitions
    ingest: IngestService
    references: ReferenceService
    kserve: KServeReceiver
    otlp: OtlpReceiver
    ingest_metrics: IngestMetrics = field(repr=False)
    # what jobs and webhook steps are handed (db, settings, models, clock)
    context: JobContext = field(repr=False)
    # latest computed results of a model, for GET /v1/models/{model}
    summaries: Callable[[ModelRecord], dict[str, Any]] = field(repr=False)
    # the /metrics body (the results collector's cached families, the rest of the registry)
    exposition: Callable[[], bytes] = field(repr=False)
    # called after jobs wrote results: the next scrape reads them instead of its cache
    results_written: Callable[[], None] = field(repr=False)


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_features=settings.max_features,
        max_string_length=settings.max_string_length,
        retention_days=settings.retention_days,
        max_future_seconds=settings.max_future_seconds,
        max_models=settings.max_models,
        max_versions_per_model=settings.max_versions_per_model,
        max_variants_per_model=settings.max_variants_per_model,
    )


def build_services(
    settings: Settings,
    database_url: str,
    *,
    registry: CollectorRegistry | None = None,
    engine: Engine | None = None,
) -> Services:
    engine = engine or make_engine(
        database_url,
        pool_size=settings.pool_size,
        statement_timeout_ms=settings.statement_timeout_ms,
    )
    registry = registry or CollectorRegistry()
    models = ModelStore(engine)
    partitions = Partitions(engine)
    limits = limits_from(settings)
    metrics = IngestMetrics(registry)
    db = Database(engine)
    ingest = IngestService(engine, models, partitions, limits, metrics)
    results = ResultsCollector(db, serve_stale=True)
    registry.register(results)
    register_webhook_metrics(registry, db)
    return Services(
        settings=settings,
        engine=engine,
        db=db,
        registry=registry,
        models=models,
        partitions=partitions,
        ingest=ingest,
        references=ReferenceService(engine, models, limits),
        kserve=KServeReceiver(ingest, models, settings, metrics),
        otlp=OtlpReceiver(
            ingest,
            models,
            metrics,
            TokenMeter(metrics, models, ingest.guard),
            max_body_bytes=settings.max_body_bytes,
        ),
        ingest_metrics=metrics,
        context=JobContext(db, settings, models),
        summaries=partial(results_summary, engine),
        exposition=partial(exposition, registry, results),
        results_written=results.invalidate,
    )
