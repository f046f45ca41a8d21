"""Run jobs for models over their windows, write the results, record job health.

For every selected job and model the runner computes all of the model's windows, then writes
them in one transaction: the results (upserted on the window end, so a re-run within the same
minute rewrites the same rows) and the removal of that job's latest values the run did not
produce again (a model version that left the window, a feature that lost its figure), which
keeps the exported series current and their number bounded. A model whose job fails is logged
with its exception and counted; the other models still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from monitor.config import Settings
from monitor.errors import ConfigError, Problem, ValidationFailed
from monitor.jobs.base import Job, JobContext, Window
from monitor.jobs.registry import JobRegistry, default_registry
from monitor.storage.jobs import record_run
from monitor.storage.models import ModelRecord
from monitor.storage.results import replace_job_results
from monitor.webhooks.triggers import enqueue_from_results

log = logging.getLogger(__name__)


class Runtime(Protocol):
    """What the runner uses: the jobs' context, and a hook telling the exporter that results
    were written. The application's service graph (built on the top floor) has both."""

    @property
    def context(self) -> JobContext: ...

    @property
    def results_written(self) -> Callable[[], None]: ...


@dataclass(frozen=True)
class JobOutcome:
    """One job for one model over its windows."""

    job: str
    model: str
    windows: tuple[str, ...]
    results: int
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_body(self) -> dict[str, object]:
        return {
            "job": self.job,
            "model": self.model,
            "windows": list(self.windows),
            "status": "ok" if self.ok else "failed",
            "results": self.results,
            "seconds": round(self.seconds, 6),
            "error": self.error,
        }


@dataclass(frozen=True)
class RunReport:
    window_end: datetime
    outcomes: tuple[JobOutcome, ...]

    @property
    def failures(self) -> int:
        return sum(not o.ok for o in self.outcomes)

    def as_body(self) -> dict[str, object]:
        return {
            "window_end": self.window_end.isoformat(),
            "runs": [o.as_body() for o in self.outcomes],
            "failures": self.failures,
        }

    def table(self) -> str:
        rows = [("JOB", "MODEL", "WINDOWS", "STATUS", "RESULTS", "SECONDS")]
        rows += [
            (
                o.job,
                o.model,
                ",".join(o.windows),
                "ok" if o.ok else "FAILED",
                str(o.results),
                f"{o.seconds:.3f}",
            )
            for o in self.outcomes
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines += [f"{o.job} {o.model}: {o.error}" for o in self.outcomes if not o.ok]
        lines.append(f"window end {self.window_end.isoformat()}, {self.failures} failed")
        return "\n".join(lines)


def align(now: datetime) -> datetime:
    """The window end for ``now``: the start of its minute, so runs in one minute agree."""
    return now.astimezone(UTC).replace(second=0, microsecond=0)


def windows_for(record: ModelRecord, settings: Settings) -> tuple[str, ...]:
    configured = record.options.windows or settings.windows or ["1h", "24h"]
    return tuple(dict.fromkeys(configured))


def _windows(record: ModelRecord, settings: Settings) -> tuple[str, ...]:
    """The windows to report a run under; none when the model's configuration is invalid
    (its run fails with that error, the other models still run)."""
    try:
        return windows_for(record, settings)
    except ConfigError:
        return ()


def _select(
    services: Runtime, model: str | None, job: str | None, jobs: Mapping[str, Job]
) -> tuple[list[str], list[ModelRecord]]:
    if job is not None and job not in jobs:
        raise ValidationFailed(
            f"unknown job {job!r}",
            [Problem(f"must be one of {', '.join(jobs)}", field="job")],
        )
    names = [job] if job is not None else list(jobs)
    store = services.context.models
    records = [store.require(model)] if model is not None else store.list()
    return names, records


def run_jobs(
    services: Runtime,
    model: str | None,
    job: str | None,
    now: datetime | None = None,
    *,
    jobs: Mapping[str, Job | str] | None = None,
) -> RunReport:
    """Run ``job`` (default: every job) for ``model`` (default: every model), now.

    Raises ``ValidationFailed`` for an unknown job and ``NotFound`` for an unknown model.
    """
    registry = JobRegistry(jobs) if jobs is not None else default_registry()
    names, records = _select(services, model, job, registry)
    end = align(now or datetime.now(UTC))
    outcomes: list[JobOutcome] = []
    for name in names:
        started = datetime.now(UTC)
        done = _run_job(services, name, registry, records, end)
        _record_health(services, name, started, done)
        outcomes.extend(done)
    services.results_written()
    return RunReport(end, tuple(outcomes))


def _run_job(
    services: Runtime,
    name: str,
    registry: Mapping[str, Job],
    records: Sequence[ModelRecord],
    end: datetime,
) -> list[JobOutcome]:
    try:
        job = registry[name]
    except (ImportError, AttributeError) as exc:  # counted as a failure of every model below
        log.exception("job %s cannot be loaded", name)
        error = f"{type(exc).__name__}: {exc}"
        return [
            JobOutcome(name, r.name, _windows(r, services.context.settings), 0, 0.0, error)
            for r in records
        ]
    return [_run_one(services, name, job, record, end) for record in records]


def _run_one(
    services: Runtime, name: str, job: Job, record: ModelRecord, end: datetime
) -> JobOutcome:
    windows = _windows(record, services.context.settings)
    clock = time.perf_counter()
    try:
        windows = windows_for(record, services.context.settings)  # raises on a bad config
        rows = [
            row for w in windows for row in job(services.context, record, Window.ending(w, end))
        ]
        with services.context.db.begin() as conn:
            written = replace_job_results(conn, name, record.id, end, windows, rows)
            # retraining webhook: decided in the results' transaction (outbox), sent later
            enqueue_from_results(conn, services.context, record, end, rows)
    except Exception as exc:  # one model's failure must not stop the others; counted below
        log.exception("job %s failed for model %s", name, record.name)
        return JobOutcome(
            name,
            record.name,
            windows,
            0,
            time.perf_counter() - clock,
            f"{type(exc).__name__}: {exc}",
        )
    return JobOutcome(name, record.name, windows, written, time.perf_counter() - clock)


def _record_health(
    services: Runtime, name: str, started: datetime, outcomes: Sequence[JobOutcome]
) -> None:
    failed = [o for o in outcomes if not o.ok]
    error = f"{failed[-1].model}: {failed[-1].error}" if failed else None
    with services.context.db.begin() as conn:
        record_run(
            conn,
            name,
            started=started,
            finished=datetime.now(UTC),
            failures=len(failed),
            error=error,
        )
