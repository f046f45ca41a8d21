"""``monitor serve``: migrations, partitions, the API and the scheduler in one process."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import grpc
import uvicorn
import yaml
from pydantic import ValidationError

from monitor.api.app import create_app
from monitor.api.auth import TokenVerifier
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.integrations.otlp_grpc import otlp_grpc_server
from monitor.jobs.scheduler import build_scheduler
from monitor.ports import ensure_port_free
from monitor.runtime import database_url
from monitor.schemas import ModelConfig
from monitor.services import Services, build_services
from monitor.storage import migrate

log = logging.getLogger(__name__)
GRPC_GRACE_SECONDS = 10.0


def load_models_file(path: Path) -> dict[str, ModelConfig]:
    """``models: {name: {task, features, drift, cost, webhook, ...}}`` from YAML or JSON."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
        return {
            name: ModelConfig.model_validate(cfg or {})
            for name, cfg in (doc.get("models") or {}).items()
        }
    except (OSError, yaml.YAMLError, ValidationError, AttributeError) as exc:
        raise ConfigError(f"cannot use models file {path}: {exc}") from exc


def prepare(services: Services, *, run_migrations: bool = True) -> None:
    if run_migrations:
        migrate.upgrade(services.engine)
    services.partitions.ensure_ahead(
        datetime.now(UTC).date(), services.settings.partition_days_ahead
    )
    if services.settings.models_file:
        for name, cfg in load_models_file(services.settings.models_file).items():
            services.models.apply(name, cfg)


def check_exposure(services: Services, host: str) -> None:
    """With no API tokens anywhere, only loopback may reach the write endpoints."""
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not TokenVerifier(services.engine, services.settings.api_tokens).enabled():
        raise ConfigError(
            f"refusing to listen on {host} without API tokens: set MONITOR_API_TOKENS or "
            "create one with 'monitor tokens create NAME'"
        )


def serve(
    settings: Settings, *, host: str, port: int, scheduler: bool = True, run_migrations: bool = True
) -> None:
    ensure_port_free(host, port)
    with database_url(settings) as url:
        services = build_services(settings, url)
        prepare(services, run_migrations=run_migrations)
        check_exposure(services, host)
        grpc_server = _otlp_grpc(services, host)
        sched = build_scheduler(services) if scheduler else None
        if sched is not None:
            sched.start()
        try:
            uvicorn.run(create_app(services), host=host, port=port, log_level="info")
        finally:
            if grpc_server is not None:  # calls in progress finish, no new one is taken
                grpc_server.stop(grace=GRPC_GRACE_SECONDS).wait()
            if sched is not None:  # a running job finishes (its transaction), no new one starts
                sched.shutdown(wait=True)
            services.engine.dispose()


def _otlp_grpc(services: Services, host: str) -> grpc.Server | None:
    """The OTLP/gRPC server, started, when ``otlp_grpc_port`` is set."""
    port = services.settings.otlp_grpc_port
    if port is None:
        return None
    ensure_port_free(host, port)
    check = TokenVerifier(services.engine, services.settings.api_tokens).check
    server, bound = otlp_grpc_server(
        services.otlp, check, host, port, max_message_bytes=services.settings.max_body_bytes
    )
    server.start()
    log.info("OTLP/gRPC on %s:%d", host, bound)
    return server
