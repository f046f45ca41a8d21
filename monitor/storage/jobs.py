"""Job health (``job_state``) and scheduler tick claims (``job_leases``).

Health lives in the database rather than in process memory so every replica's ``/metrics``
reports the same ``monitor_job_*`` values, whichever replica ran the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

LEASE_HISTORY = timedelta(days=7)

_RECORD = text(
    "INSERT INTO job_state AS s (job, runs_total, failures_total, last_started_at, "
    "last_finished_at, last_duration_seconds, last_success_at, last_error) "
    "VALUES (:job, 1, :failures, :started, :finished, :duration, "
    "CASE WHEN :failures = 0 THEN CAST(:finished AS timestamptz) END, :error) "
    "ON CONFLICT (job) DO UPDATE SET runs_total = s.runs_total + 1, "
    "failures_total = s.failures_total + excluded.failures_total, "
    "last_started_at = excluded.last_started_at, last_finished_at = excluded.last_finished_at, "
    "last_duration_seconds = excluded.last_duration_seconds, "
    "last_success_at = coalesce(excluded.last_success_at, s.last_success_at), "
    "last_error = coalesce(excluded.last_error, s.last_error)"
)


@dataclass(frozen=True)
class JobState:
    job: str
    runs_total: int
    failures_total: int
    last_duration_seconds: float | None
    last_success_at: datetime | None
    last_error: str | None


def record_run(
    conn: Connection,
    job: str,
    *,
    started: datetime,
    finished: datetime,
    failures: int,
    error: str | None,
) -> None:
    """Count one run of ``job``; it is a success (last_success_at moves) when nothing failed."""
    conn.execute(
        _RECORD,
        {
            "job": job,
            "failures": failures,
            "started": started,
            "finished": finished,
            "duration": (finished - started).total_seconds(),
            "error": error,
        },
    )


def read_job_states(conn: Connection) -> list[JobState]:
    rows = conn.execute(
        text(
            "SELECT job, runs_total, failures_total, last_duration_seconds, last_success_at, "
            "last_error FROM job_state ORDER BY job"
        )
    )
    return [JobState(*row) for row in rows]


def claim_tick(conn: Connection, job: str, tick: datetime, holder: str) -> bool:
    """Claim (job, tick) for ``holder``; False when another replica got there first."""
    claimed = conn.execute(
        text(
            "INSERT INTO job_leases (job, tick, holder) VALUES (:job, :tick, :holder) "
            "ON CONFLICT (job, tick) DO NOTHING RETURNING 1"
        ),
        {"job": job, "tick": tick, "holder": holder},
    ).first()
    if claimed is not None:
        conn.execute(
            text("DELETE FROM job_leases WHERE job = :job AND tick < :cutoff"),
            {"job": job, "cutoff": tick - LEASE_HISTORY},
        )
    return claimed is not None


def finish_tick(conn: Connection, job: str, tick: datetime) -> None:
    conn.execute(
        text("UPDATE job_leases SET finished_at = now() WHERE job = :job AND tick = :tick"),
        {"job": job, "tick": tick},
    )
