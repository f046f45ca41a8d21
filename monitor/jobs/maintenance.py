"""Partitions ahead of time, and retention: drop days older than MONITOR_RETENTION_DAYS."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from monitor.config import Settings
from monitor.storage.partitions import Partitions

log = logging.getLogger(__name__)


class MaintenanceRuntime(Protocol):
    """What maintenance uses (the application's service graph has it)."""

    @property
    def partitions(self) -> Partitions: ...

    @property
    def settings(self) -> Settings: ...


def run_maintenance(
    services: MaintenanceRuntime, now: datetime | None = None
) -> dict[str, list[str]]:
    today = (now or datetime.now(UTC)).date()
    created = services.partitions.ensure_ahead(today, services.settings.partition_days_ahead)
    dropped = services.partitions.drop_before(
        today - timedelta(days=services.settings.retention_days)
    )
    if created or dropped:
        log.info("partitions created %s, dropped %s", created, dropped)
    return {
        "created": [d.isoformat() for d in created],
        "dropped": [d.isoformat() for d in dropped],
    }
