"""APScheduler 3.x inside ``monitor serve``: maintenance hourly, the computations every tick.

Each computation is its own scheduler job on ``MONITOR_SCHEDULER_INTERVAL_SECONDS``, fired on
boundaries that are multiples of the interval since the epoch, so replicas fire together and
``monitor.jobs.leases`` lets exactly one of them run each tick. ``coalesce`` and
``max_instances=1`` keep a slow run from stacking up inside one process.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from monitor.integrations.kserve import KServeReceiver
from monitor.jobs.base import JOB_NAMES, Job
from monitor.jobs.leases import holder_name, tick_of
from monitor.jobs.maintenance import MaintenanceRuntime, run_maintenance
from monitor.jobs.runner import RunReport, Runtime, run_jobs
from monitor.storage.leases import job_lease
from monitor.webhooks.dispatcher import DISPATCH_INTERVAL_SECONDS, dispatch_pending

log = logging.getLogger(__name__)


class SchedulerRuntime(Runtime, MaintenanceRuntime, Protocol):
    """What the scheduler drives: the jobs, maintenance, tick leases and the KServe pairing
    flush (the application's service graph has it all)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def kserve(self) -> KServeReceiver: ...


def build_scheduler(services: SchedulerRuntime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone="UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    scheduler.add_job(run_maintenance, "interval", hours=1, args=[services], id="maintenance")
    scheduler.add_job(
        dispatch_pending,
        "interval",
        seconds=DISPATCH_INTERVAL_SECONDS,
        args=[services.context],
        id="webhooks",
    )
    # KServe/Seldon requests whose response never came: stored alone after the pairing wait
    scheduler.add_job(
        services.kserve.flush_expired,
        "interval",
        seconds=max(1, min(30, services.settings.pairing_wait_seconds // 2)),
        id="integrations:pairing",
    )
    interval = services.settings.scheduler_interval_seconds
    first = tick_of(datetime.now(UTC), interval) + timedelta(seconds=interval)
    for job in JOB_NAMES:
        scheduler.add_job(
            run_tick,
            IntervalTrigger(seconds=interval, start_date=first, timezone=UTC),
            args=[services, job],
            id=f"compute:{job}",
            # a tick fired late is still worth running, until the next one is due
            misfire_grace_time=interval,
        )
    return scheduler


def run_tick(
    services: SchedulerRuntime,
    job: str,
    now: datetime | None = None,
    *,
    jobs: Mapping[str, Job | str] | None = None,
) -> RunReport | None:
    """Run ``job`` for every model at the tick of ``now``, unless another replica has it."""
    tick = tick_of(now or datetime.now(UTC), services.settings.scheduler_interval_seconds)
    with job_lease(services.engine, job, tick, holder_name()) as held:
        if not held:
            log.debug("job %s tick %s: taken by another replica", job, tick.isoformat())
            return None
        report = run_jobs(services, None, job, now=tick, jobs=jobs)
    if report.failures:
        log.warning("job %s tick %s: %d model(s) failed", job, tick.isoformat(), report.failures)
    return report
