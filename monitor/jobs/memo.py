"""Figures several jobs of one tick read alike, computed once: each model version's row count
in a window (the estimation, multivariate and segments jobs each need it to size their samples,
and counting a 1M-row window reads its whole heap: 0.3-0.5 s).

A ``Memo`` belongs to a ``JobContext`` (built with the service graph, not a module global). Its
keys name the window end, so a new tick never reads an old figure; a re-run for the same window
end within ``max_age`` seconds (default 120: a tick's jobs run within it) reads the same one,
later it is computed again (rows that arrived late for that window are counted then). Jobs of
one tick run in scheduler threads at the same moment: the first to ask computes, the others wait
for its answer (a failure is not kept: each caller then computes for itself). At most ``size``
entries are held, the least recently used dropped first, each a few numbers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar, cast

from monitor.storage.database import Database
from monitor.storage.rowsample import window_counts
from monitor.storage.span import Span

T = TypeVar("T")
DEFAULT_SIZE = 1024
DEFAULT_MAX_AGE = 120.0
"""Seconds a figure is kept: the jobs of one tick ask within it."""


@dataclass
class _Entry:
    born: float
    done: threading.Event = field(default_factory=threading.Event)
    value: object = None
    failed: bool = False


class Memo:
    """A bounded, thread-safe, compute-once map from keys to figures."""

    def __init__(
        self,
        size: int = DEFAULT_SIZE,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size < 1 or max_age <= 0:
            raise ValueError("size must be at least 1 and max_age above 0")
        self._size, self._max_age, self._clock = size, max_age, clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The figure under ``key``, from ``compute()`` the first time it is asked for."""
        with self._lock:
            now = self._clock()
            entry = self._entries.get(key)
            if entry is not None and now - entry.born > self._max_age:
                entry = None
            owner = entry is None
            if entry is None:
                entry = self._entries[key] = _Entry(now)
                self._entries.move_to_end(key)
                while len(self._entries) > self._size:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
        if not owner:
            entry.done.wait()
            return compute() if entry.failed else cast(T, entry.value)
        try:
            value = compute()
        except BaseException:
            entry.failed = True
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            entry.done.set()
            raise
        entry.value = value
        entry.done.set()
        return value


def version_counts(memo: Memo, db: Database, span: Span) -> Mapping[str, int]:
    """Each model version's rows in ``span``, counted once per memo."""
    return memo.get(("version_counts", span), lambda: MappingProxyType(window_counts(db, span)))
