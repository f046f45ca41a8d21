"""The service graph: built once from settings and an engine, passed to the app, CLI and jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from monitor.api.auth import TokenVerifier
from monitor.config import Settings
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
    tokens: TokenVerifier
    kserve: KServeReceiver
    otlp: OtlpReceiver
    ingest_metrics: IngestMetrics = field(repr=False)
    # what jobs and webhook steps are handed (db, settings, models, clock)
    context: JobContext = field(repr=False)
    # latest computed results of a model, for GET /v1/models/{model}; set by the jobs package
    summaries: Callable[[ModelRecord], dict[str, Any]] | None = None
    # the /metrics body, when something faster than generate_latest(registry) is set up
    exposition: Callable[[], bytes] | None = None
    # called after jobs wrote results: the next scrape reads them instead of its cache
    results_written: Callable[[], None] = field(default=lambda: None, repr=False)


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
    services = Services(
        settings=settings,
        engine=engine,
        db=db,
        registry=registry,
        models=models,
        partitions=partitions,
        ingest=ingest,
        references=ReferenceService(engine, models, limits),
        tokens=TokenVerifier(engine, settings.api_tokens),
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
    )
    # imported here: the exporter imports monitor.jobs, whose modules import this one
    from monitor.exporter import ResultsCollector, exposition
    from monitor.webhooks.metrics import register_webhook_metrics

    results = ResultsCollector(services.db, serve_stale=True)
    registry.register(results)
    services.exposition = partial(exposition, registry, results)
    services.results_written = results.invalidate
    register_webhook_metrics(registry, services.db)
    return services
