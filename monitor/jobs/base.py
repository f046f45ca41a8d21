"""What every scheduled job is: a function of (services, model, window) to results.

Jobs read their window from PostgreSQL, compute with pure ``monitor.stats`` functions, and
return ``Result`` rows; the runner writes them (upsert) and records job health. A job never
calls the network: retraining webhooks go through the outbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from monitor.services import Services
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result

JOB_NAMES = ("drift", "quality", "performance", "serving", "cost")

_WINDOW = re.compile(r"^([1-9][0-9]{0,4})([mhdw])$")
_UNIT = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def parse_window(name: str) -> timedelta:
    match = _WINDOW.match(name)
    if not match:
        raise ValueError(f"window {name!r} must look like 15m, 1h, 24h, 7d or 2w")
    return int(match.group(1)) * _UNIT[match.group(2)]


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
    def __call__(self, services: Services, model: ModelRecord, window: Window) -> list[Result]: ...
