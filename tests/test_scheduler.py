"""Several replicas on one database: each job runs once per tick; nothing waits for a dead run."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from monitor.config import Settings
from monitor.jobs.base import JOB_NAMES, Job, JobContext, Window
from monitor.jobs.leases import tick_of
from monitor.jobs.scheduler import build_scheduler, run_tick
from monitor.services import Services, build_services
from monitor.storage.engine import libpq_url
from monitor.storage.leases import LOCK_NAMESPACE
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result

TICK = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class CountingJobs:
    """Fake jobs that count their calls and take a moment, so concurrent ticks overlap."""

    def __init__(self, seconds: float = 0.2) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds = seconds
        self._mutex = threading.Lock()

    def registry(self) -> dict[str, Job | str]:
        return {name: self._job(name) for name in JOB_NAMES}

    def _job(self, name: str) -> Job:
        def job(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
            with self._mutex:
                self.calls[name] += 1
            time.sleep(self.seconds)
            return []

        return job


@pytest.fixture
def replicas(settings: Settings, db_url: str, services: Services) -> Iterator[list[Services]]:
    services.models.put(
        "m", task="classification", schema=None, prediction_kind=None, config={"windows": ["1h"]}
    )
    other = build_services(settings, db_url, registry=CollectorRegistry())
    yield [services, other]
    other.engine.dispose()


def _runs(services: Services) -> dict[str, int]:
    with services.engine.connect() as conn:
        rows = conn.execute(text("SELECT job, runs_total FROM job_state"))
        return {job: runs for job, runs in rows}


def _leases(services: Services) -> Counter[str]:
    with services.engine.connect() as conn:
        return Counter(conn.execute(text("SELECT job FROM job_leases")).scalars())


def _together(replicas: list[Services], jobs: CountingJobs, tick: datetime) -> list[object]:
    barrier = threading.Barrier(len(replicas) * len(JOB_NAMES))
    reports: list[object] = []

    def fire(svc: Services, job: str) -> None:
        barrier.wait()
        reports.append(run_tick(svc, job, tick, jobs=jobs.registry()))

    threads = [
        threading.Thread(target=fire, args=(svc, job)) for svc in replicas for job in JOB_NAMES
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return reports


def test_two_replicas_firing_the_same_tick_run_each_job_once(replicas: list[Services]) -> None:
    jobs = CountingJobs()
    reports = _together(replicas, jobs, TICK + timedelta(seconds=1))
    assert sum(r is not None for r in reports) == len(JOB_NAMES)
    assert jobs.calls == Counter({name: 1 for name in JOB_NAMES})
    assert _runs(replicas[0]) == {name: 1 for name in JOB_NAMES}
    assert _leases(replicas[0]) == Counter({name: 1 for name in JOB_NAMES})

    # a replica that fires late in the same tick finds it claimed; the next tick runs
    late, next_tick = TICK + timedelta(seconds=30), TICK + timedelta(seconds=61)
    assert run_tick(replicas[1], "drift", late, jobs=jobs.registry()) is None
    assert run_tick(replicas[1], "drift", next_tick, jobs=jobs.registry()) is not None
    assert jobs.calls["drift"] == 2


def test_a_run_in_progress_makes_the_other_replicas_skip_without_waiting(
    replicas: list[Services], db_url: str
) -> None:
    jobs = CountingJobs(seconds=0)
    registry = jobs.registry()
    with psycopg.connect(libpq_url(db_url), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, hashtext('serving'))", (LOCK_NAMESPACE,))
        started = time.monotonic()
        assert run_tick(replicas[0], "serving", TICK, jobs=registry) is None
        assert time.monotonic() - started < 2
    # the holder's session ended (as when a replica crashes): its lock goes with it, as soon
    # as the server has noticed
    deadline = time.monotonic() + 5
    while run_tick(replicas[0], "serving", TICK, jobs=registry) is None:
        assert time.monotonic() < deadline, "the lock outlived its session"
        time.sleep(0.05)
    assert jobs.calls["serving"] == 1


def test_the_scheduler_fires_every_job_on_interval_boundaries(services: Services) -> None:
    scheduler = build_scheduler(services)
    interval = services.settings.scheduler_interval_seconds
    compute = [j for j in scheduler.get_jobs() if j.id.startswith("compute:")]
    assert sorted(j.id for j in compute) == sorted(f"compute:{n}" for n in JOB_NAMES)
    for job in compute:
        assert job.trigger.interval == timedelta(seconds=interval)
        assert job.trigger.start_date.timestamp() % interval == 0
    assert tick_of(datetime(2026, 1, 1, 0, 4, 59, tzinfo=UTC), 300) == datetime(
        2026, 1, 1, 0, 0, tzinfo=UTC
    )
