"""Job leases in PostgreSQL: a job's session advisory lock plus its claimed tick.

See ``monitor.jobs.leases`` for why a scheduled run needs both. ``job_lease`` holds the lock
on one connection for the whole run and claims (job, tick) in ``job_leases``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from monitor.storage.engine import translate_errors
from monitor.storage.jobs import claim_tick, finish_tick

# Namespace of the two-key advisory locks (the other key is hashtext(job)); migrations and
# partition DDL use single-key locks, which never collide with two-key ones.
LOCK_NAMESPACE = 7_391_006


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
