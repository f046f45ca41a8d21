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
from datetime import UTC, datetime


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def tick_of(now: datetime, interval_seconds: int) -> datetime:
    """The interval boundary at or before ``now`` (boundaries are multiples since the epoch)."""
    seconds = int(now.timestamp()) // interval_seconds * interval_seconds
    return datetime.fromtimestamp(seconds, UTC)
