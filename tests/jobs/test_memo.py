"""The tick memo: each figure computed once, however many jobs (threads) ask at the same time."""

from __future__ import annotations

import threading
import time

import pytest

from monitor.jobs.memo import Memo


def test_a_figure_is_computed_once_per_key() -> None:
    memo = Memo()
    calls: list[str] = []

    def compute(key: str) -> str:
        calls.append(key)
        return key.upper()

    assert memo.get("a", lambda: compute("a")) == "A"
    assert memo.get("a", lambda: compute("a")) == "A"
    assert memo.get("b", lambda: compute("b")) == "B"
    assert calls == ["a", "b"]


def test_concurrent_askers_wait_for_the_first_answer() -> None:
    memo = Memo()
    calls: list[int] = []
    lock = threading.Lock()

    def slow() -> int:
        with lock:
            calls.append(1)
        time.sleep(0.2)
        return 7

    got: list[int] = []
    threads = [threading.Thread(target=lambda: got.append(memo.get("k", slow))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [7, 7, 7, 7]
    assert calls == [1]


def test_a_failure_is_not_kept() -> None:
    memo = Memo()

    def broken() -> int:
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        memo.get("k", broken)
    assert len(memo) == 0
    assert memo.get("k", lambda: 3) == 3


def test_the_memo_is_bounded_least_recently_used_first() -> None:
    memo = Memo(size=2)
    memo.get("a", lambda: 1)
    memo.get("b", lambda: 2)
    memo.get("a", lambda: 0)  # a used again: b is the oldest
    memo.get("c", lambda: 3)
    assert len(memo) == 2
    assert memo.get("a", lambda: 0) == 1
    assert memo.get("b", lambda: 20) == 20  # dropped, computed again


def test_a_figure_older_than_max_age_is_computed_again() -> None:
    now = [0.0]
    memo = Memo(max_age=120.0, clock=lambda: now[0])
    assert memo.get("k", lambda: 1) == 1
    now[0] = 119.0
    assert memo.get("k", lambda: 2) == 1
    now[0] = 121.0
    assert memo.get("k", lambda: 3) == 3
