"""SIGTERM handled like Ctrl-C: the block is left through its ``finally`` clauses.

Docker, Kubernetes and systemd stop a service with SIGTERM, whose default action ends the
process at once: no ``finally`` runs, and the embedded PostgreSQL this process started is left
running with no parent. While ``sigterm_raises()`` is active, SIGTERM raises ``Terminated`` in the
main thread instead, so every cleanup on the way out (scheduler, API server, database) runs.

uvicorn installs its own SIGINT/SIGTERM handlers while it serves: it drains the open requests,
restores the handlers it found (ours) and raises the captured signal again, which lands here.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, so ``except Exception`` cannot swallow it."""


def _raise_once(signum: int, _frame: FrameType | None) -> None:
    # a second SIGTERM while the first one's cleanup runs must not interrupt that cleanup
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated(signum)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_once)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
