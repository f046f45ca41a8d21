"""Settings: one validated object built from ``MONITOR_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _default_data_dir() -> Path:
    # root's home is private, and the embedded server runs as an unprivileged user
    if os.geteuid() == 0:
        return Path("/var/lib/ml-monitor")
    return Path.home() / ".local" / "share" / "ml-monitor"


class Settings(BaseSettings):
    """Everything the service reads from its environment, checked once at start-up."""

    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL; unset means the embedded server under data_dir",
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    embedded_user: str = Field(
        default="nobody",
        description="OS user that runs the embedded PostgreSQL when the service runs as root",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    otlp_grpc_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="also serve OTLP/gRPC (traces, logs, metrics) on this port, e.g. 4317",
    )
    api_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    read_tokens_required: bool = Field(
        default=False,
        description="once tokens exist, reads under /v1 need one too (metrics and health never)",
    )
    public_url: str | None = None

    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    max_batch_records: int = Field(default=50_000, gt=0)
    max_features: int = Field(default=1_000, gt=0)
    max_string_length: int = Field(default=1_024, gt=0)
    max_future_seconds: int = Field(default=3_600, ge=0)

    max_models: int = Field(
        default=1_000, gt=0, description="cap on models created by ingest (payloads, sources)"
    )
    max_versions_per_model: int = Field(default=100, gt=0)
    max_variants_per_model: int = Field(default=20, gt=0)
    pairing_wait_seconds: int = Field(
        default=60,
        gt=0,
        description="how long a KServe/Seldon request waits for its response before it is "
        "stored alone",
    )
    max_pending_calls: int = Field(
        default=10_000, gt=0, description="unpaired halves kept at most; beyond, stored alone"
    )

    retention_days: int = Field(default=30, gt=0)
    partition_days_ahead: int = Field(default=3, ge=1)
    statement_timeout_ms: int = Field(default=60_000, gt=0)
    pool_size: int = Field(default=8, gt=0)

    models_file: Path | None = Field(
        default=None, description="optional YAML or JSON file of model configurations"
    )
    scheduler_interval_seconds: int = Field(default=60, gt=0)
    webhook_max_attempts: int = Field(default=36, ge=1, description="then the event is dead")
    webhook_base_delay_seconds: float = Field(
        default=60.0, gt=0, description="wait after the first failed attempt; doubles after each"
    )
    webhook_max_delay_seconds: float = Field(
        default=3600.0, gt=0, description="the cap of the wait between attempts"
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="one attempt's HTTP")
    windows: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["1h", "24h"])

    @field_validator("api_tokens", "windows", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _webhook_delays(self) -> Settings:
        if self.webhook_base_delay_seconds > self.webhook_max_delay_seconds:
            raise ValueError(
                "MONITOR_WEBHOOK_BASE_DELAY_SECONDS must not exceed "
                "MONITOR_WEBHOOK_MAX_DELAY_SECONDS"
            )
        return self

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def binds_loopback_only(self) -> bool:
        return self.host in LOOPBACK_HOSTS
