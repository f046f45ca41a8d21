"""What every scheduled job is: a function of (context, model, window) to results.

Jobs read their window from PostgreSQL, compute with pure ``monitor.stats`` functions, and
return ``Result`` rows; the runner writes them (upsert) and records job health. A job never
calls the network: retraining webhooks go through the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.jobs.context import JobContext
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.windows import parse_window

__all__ = ["ALL_VERSIONS", "JOB_NAMES", "Job", "JobContext", "Window", "parse_window"]

JOB_NAMES = (
    "drift",
    "quality",
    "performance",
    "serving",
    "cost",
    "estimation",
    "multivariate",
    "segments",
)
ALL_VERSIONS = ""
"""``model_version`` of a figure about the model as a whole (exported as no version label)."""


@dataclass(frozen=True)
class Window:
    """A trailing window [start, end) named like the Prometheus label value (``1h``, ``24h``)."""

    name: str
    start: datetime
    end: datetime

    @classmethod
    def ending(cls, name: str, end: datetime) -> Window:
        return cls(name, end - parse_window(name), end)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


class Job(Protocol):
    def __call__(self, ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]: ...
