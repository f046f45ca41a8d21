"""Once per tick across replicas: a job's scheduled run needs the job's lock and its tick.

Every replica's scheduler fires each job on the same interval boundaries (the tick). To run,
a replica must

1. take the job's PostgreSQL session advisory lock (``pg_try_advisory_lock``, not waiting) on a
   connection it holds for the whole run: while a slow run of the job is still going anywhere,
   other replicas skip their ticks instead of piling up; if the holder crashes, its
   connection closes and the lock is gone, so nothing ever waits for a dead run;
2. claim the tick: insert (job, tick) into ``job_leases``. The first replica inserts it and
   runs; a replica that takes the lock later in the same tick (after the run finished) finds
   the row and skips. A crashed run's tick stays claimed, and the next tick runs as usual.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

from monitor.storage.engine import translate_errors
from monitor.storage.jobs import claim_tick, finish_tick

# Namespace of the two-key advisory locks (the other key is hashtext(job)); migrations and
# partition DDL use single-key locks, which never collide with two-key ones.
LOCK_NAMESPACE = 7_391_006


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def tick_of(now: datetime, interval_seconds: int) -> datetime:
    """The interval boundary at or before ``now`` (boundaries are multiples since the epoch)."""
    seconds = int(now.timestamp()) // interval_seconds * interval_seconds
    return datetime.fromtimestamp(seconds, UTC)


@contextmanager
def job_lease(engine: Engine, job: str, tick: datetime, holder: str) -> Iterator[bool]:
    """True inside the block when this process holds ``job``'s lock and claimed ``tick``."""
    with translate_errors(), engine.connect() as conn:
        if not _try_lock(conn, job):
            yield False
            return
        try:
            claimed = claim_tick(conn, job, tick, holder)
            conn.commit()
            yield claimed
            if claimed:
                finish_tick(conn, job, tick)
                conn.commit()
        finally:
            _unlock(conn, job)


def _try_lock(conn: Connection, job: str) -> bool:
    got = conn.execute(
        text("SELECT pg_try_advisory_lock(:ns, hashtext(:job))"),
        {"ns": LOCK_NAMESPACE, "job": job},
    ).scalar_one()
    conn.commit()  # the lock is the session's; no transaction stays open during the run
    return bool(got)


def _unlock(conn: Connection, job: str) -> None:
    if conn.invalidated or conn.closed:
        return
    try:
        conn.rollback()
        conn.execute(
            text("SELECT pg_advisory_unlock(:ns, hashtext(:job))"),
            {"ns": LOCK_NAMESPACE, "job": job},
        )
        conn.commit()
    except Exception:
        conn.invalidate()  # closing the session is what releases the lock then
        raise
