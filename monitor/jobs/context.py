"""What a job (and a webhook step) is handed: the database, the settings, the models, a clock.

Built once by the application factory (``monitor.app``) and passed down; nothing in here
knows the HTTP app, the exporter or the scheduler, so jobs import only the floors below them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from monitor.config import Settings
from monitor.jobs.memo import Memo
from monitor.storage.database import Database
from monitor.storage.models import ModelStore


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobContext:
    """The narrow context of a job: read and write through ``db``, configure from ``settings``."""

    db: Database
    settings: Settings
    models: ModelStore
    clock: Callable[[], datetime] = field(default=utcnow, repr=False)
    memo: Memo = field(default_factory=Memo, repr=False, compare=False)
    """Figures the jobs of one tick share (each version's rows in a window), computed once."""
