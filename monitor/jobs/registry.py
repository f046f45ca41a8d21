"""Job names to ``Job`` callables, resolved by dotted path when a run needs them.

Resolving at call time keeps ``import monitor.jobs.runner`` cheap and lets a job module that
fails to import (or is not there yet) fail its own runs only, counted like any other failure.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from monitor.jobs.base import Job

DEFAULT_PATHS: Mapping[str, str] = {
    "drift": "monitor.jobs.drift:run_drift",
    "quality": "monitor.jobs.quality:run_quality",
    "performance": "monitor.jobs.performance:run_performance",
    "serving": "monitor.jobs.serving:run_serving",
    "cost": "monitor.jobs.cost:run_cost",
    "estimation": "monitor.jobs.estimation:run_estimation",
    "multivariate": "monitor.jobs.multivariate:run_multivariate",
    "segments": "monitor.jobs.segments:run_segments",
}


def resolve(path: str) -> Job:
    """``package.module:function`` -> the function."""
    module_name, _, attr = path.partition(":")
    job: Job = getattr(importlib.import_module(module_name), attr)
    return job


class JobRegistry(Mapping[str, Job]):
    """Read-only mapping of job name -> ``Job``; entries are callables or dotted paths."""

    def __init__(self, entries: Mapping[str, Job | str]) -> None:
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> Job:
        entry = self._entries[name]
        return resolve(entry) if isinstance(entry, str) else entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def default_registry() -> JobRegistry:
    return JobRegistry(DEFAULT_PATHS)
