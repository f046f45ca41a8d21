"""Shared benchmark plumbing: a throwaway database, synthetic data, RSS sampling."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import psutil

from monitor.storage import databases, migrate
from monitor.storage.engine import libpq_url, make_engine

ADMIN_URL = os.environ.get(
    "MONITOR_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
NUMERIC = [f"n{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
CATEGORIES = np.array([f"cat{i}" for i in range(8)])


@contextmanager
def scratch_database(prefix: str = "mm_bench") -> Iterator[str]:
    """A migrated database of its own on MONITOR_BENCH_DATABASE_URL's server, dropped after."""
    with databases.scratch_database(libpq_url(ADMIN_URL), prefix) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


def feature_arrays(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    num = rng.normal(size=(rows, len(NUMERIC))).round(4)
    cat = CATEGORIES[rng.integers(0, len(CATEGORIES), size=(rows, len(CATEGORICAL)))]
    return num, cat


class RssSampler:
    """Peak RSS of a process (and its children), sampled every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        procs = [self.process, *self.process.children(recursive=True)]
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
