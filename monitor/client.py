"""The Python SDK: log predictions from a model server without ever slowing or breaking it.

    client = MonitorClient("http://127.0.0.1:8000", token="...")
    pid = client.log("fraud", {"amount": 12.5, "country": "DE"}, 0.87, latency_ms=23.4)
    client.label("fraud", pid, 1)          # later, when ground truth arrives
    client.close()                          # also runs at interpreter exit

``log`` only appends to an in-memory queue (a few microseconds). Sender threads (``senders``,
two by default: two batches in flight) POST to ``/v1/predictions`` in batches by size and time:
a batch leaves when it holds ``batch_size`` records or when its oldest record has waited
``flush_interval`` seconds, whichever comes first (``flush`` and ``close`` send at once).

Failures, by kind:

* the service is unreachable or busy (network errors, 408, 425, 429, 502, 503, 504): retried
  with exponential backoff for as long as the client is open; every record carries a
  ``prediction_id`` fixed at ``log`` time, so a retry of a batch the server already stored
  stores nothing twice;
* the service rejects records (422 naming them): those are dropped and counted as
  ``rejected``, the rest is resent;
* the service fails on the batch (another 5xx): tried ``max_attempts`` times, then the batch
  is split in halves and each half delivered on its own, so one bad record cannot block its
  batch; a single record that still fails is dropped and counted as ``failed``;
* the service cannot read the batch (400, 413, a 422 that names no record): split at once; a
  single record still refused is dropped and counted as ``rejected``;
* any other refusal (401, 403, 404, ...): the batch is dropped and counted as ``rejected``.

When the queue is full, new records are dropped and counted, never blocking the caller.
``close(timeout)`` returns within ``timeout``; what is not acknowledged by then is counted as
dropped.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import httpx
import orjson

log = logging.getLogger(__name__)

_TRANSIENT_STATUS = frozenset({408, 425, 429, 502, 503, 504})
_SPLIT_STATUS = frozenset({400, 413, 422})  # the batch's content may be at fault: bisect it
_MIN_REQUEST_TIMEOUT = 0.05


@dataclass
class ClientStats:
    """``sent``: acknowledged; ``dropped``: never acknowledged (queue full, client closed);
    ``rejected``: refused by the service (4xx); ``failed``: the service kept failing on them;
    ``retries``: requests repeated; ``batches``: requests acknowledged."""

    sent: int = 0
    dropped: int = 0
    rejected: int = 0
    failed: int = 0
    retries: int = 0
    batches: int = 0


class _Verdict(Enum):
    STORED = "stored"
    TRANSIENT = "transient"  # retry the same batch, without limit
    BROKEN = "broken"  # a 5xx: retry a few times, then bisect
    INVALID = "invalid"  # a 400, 413 or a 422 naming no record: bisect at once
    REJECTED = "rejected"  # the whole batch is refused for good (401, 403, 404, ...)


@dataclass(frozen=True)
class _Answer:
    verdict: _Verdict
    status: int | None = None
    bad: tuple[int, ...] = ()  # indexes a 422 named


@dataclass
class _Queued:
    record: Any
    enqueued: float  # time.monotonic() at log()


class MonitorClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        batch_size: int = 1_000,
        flush_interval: float = 1.0,
        max_queue: int = 200_000,
        timeout: float = 10.0,
        max_backoff: float = 10.0,
        max_attempts: int = 3,
        senders: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``senders``: batches in flight at once (each sender is a thread). ``max_attempts``:
        tries of a batch the service fails on (not a transient failure) before it is split."""
        positive = (batch_size, max_queue, flush_interval, senders, max_attempts, timeout)
        if min(positive) <= 0:
            raise ValueError(
                "batch_size, max_queue, flush_interval, senders, max_attempts and timeout "
                "must be positive"
            )
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        self.stats = ClientStats()
        self._queue: deque[_Queued] = deque()
        self._labels: deque[_Queued] = deque()
        self._lock = threading.Lock()  # queue hand-off, in-flight counts and stats
        self._wake = threading.Event()  # a batch may be due
        self._stop = threading.Event()  # close(): stop retrying, end the threads
        self._idle = threading.Condition()  # notified whenever a batch is done
        self._in_flight = 0  # predictions taken from the queue, not yet settled
        self._labels_in_flight = 0
        self._flushing = 0  # flush() calls waiting: send partial batches now
        self._close_deadline: float | None = None
        self._closing = False
        self._final = False  # close() counted what was left: stats are final
        self._ids = itertools.count()
        self._prefix = os.urandom(8).hex()
        self._running = senders
        self._threads = [
            threading.Thread(target=self._run, name=f"ml-monitor-sdk-{i}", daemon=True)
            for i in range(senders)
        ]
        for thread in self._threads:
            thread.start()
        atexit.register(self.close)

    # -- the caller's side: cheap, never raises, never blocks ------------------------------
    def log(
        self,
        model: str,
        features: dict[str, Any],
        prediction: Any = None,
        *,
        prediction_id: str | None = None,
        timestamp: float | None = None,
        **fields: Any,
    ) -> str:
        """Queue one prediction log; returns its prediction_id (use it for ``label``)."""
        pid = prediction_id or f"{self._prefix}-{next(self._ids)}"
        if len(self._queue) >= self.max_queue or self._closing:
            self._count(dropped=1)
            return pid
        record = (model, features, prediction, pid, timestamp or time.time(), fields)
        self._queue.append(_Queued(record, time.monotonic()))
        queued = len(self._queue)
        if queued == 1 or queued >= self.batch_size:  # a new batch's clock starts, or it is full
            self._wake.set()
        return pid

    def label(
        self, model: str, prediction_id: str, label: Any, timestamp: float | None = None
    ) -> None:
        """Queue delayed ground truth for an earlier prediction."""
        record = {
            "model": model,
            "prediction_id": prediction_id,
            "label": label,
            "timestamp": _iso(timestamp or time.time()),
        }
        self._labels.append(_Queued(record, time.monotonic()))
        if len(self._labels) in (1, self.batch_size):
            self._wake.set()

    @property
    def pending(self) -> int:
        """Records queued or in flight, not yet acknowledged."""
        return len(self._queue) + self._in_flight

    def flush(self, timeout: float = 30.0) -> bool:
        """Send what is queued now and wait until it is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._flushing += 1
        try:
            self._wake.set()
            with self._idle:
                while self._busy():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._idle.wait(min(remaining, 0.05))
            return True
        finally:
            with self._lock:
                self._flushing -= 1

    def close(self, timeout: float = 30.0) -> None:
        """Flush, then stop the sender threads; returns within ``timeout`` seconds. Records
        not acknowledged by then are counted as dropped (``stats`` is final afterwards)."""
        if self._closing:
            return
        deadline = time.monotonic() + timeout
        self._close_deadline = deadline
        self.flush(timeout)
        self._closing = True
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            self.stats.dropped += len(self._queue) + self._in_flight
            self._queue.clear()
            self._labels.clear()
            self._final = True
        atexit.unregister(self.close)

    def __enter__(self) -> MonitorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the sender threads ----------------------------------------------------------------
    def _busy(self) -> bool:
        return bool(self._queue or self._labels or self._in_flight or self._labels_in_flight)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._wake.clear()
                if self._send_labels() or self._send_predictions():
                    continue
                self._wake.wait(self._until_due())
        finally:
            with self._lock:
                self._running -= 1
                last = self._running == 0
            if last:
                self._http.close()

    def _until_due(self) -> float:
        """Seconds until the oldest queued record has waited ``flush_interval``."""
        with self._lock:
            oldest = [q[0].enqueued for q in (self._queue, self._labels) if q]
        if not oldest:
            return self.flush_interval
        return max(0.0, min(oldest) + self.flush_interval - time.monotonic())

    def _due(self, queue: deque[_Queued]) -> bool:
        """A batch leaves when full, when its oldest record has waited long enough, or now
        when someone flushes. Called with the lock held."""
        if not queue:
            return False
        if len(queue) >= self.batch_size or self._flushing or self._closing:
            return True
        return time.monotonic() - queue[0].enqueued >= self.flush_interval

    def _take(self, queue: deque[_Queued]) -> list[Any]:
        with self._lock:  # taken and counted in flight at once, so flush() never sees a gap
            if not self._due(queue):
                return []
            items = [queue.popleft().record for _ in range(min(len(queue), self.batch_size))]
            if queue is self._queue:
                self._in_flight += len(items)
            else:
                self._labels_in_flight += len(items)
        return items

    def _send_predictions(self) -> bool:
        items = self._take(self._queue)
        if items:
            self._deliver("/v1/predictions", "predictions", [_record(i) for i in items])
        return bool(items)

    def _send_labels(self) -> bool:
        batch = self._take(self._labels)
        if batch:
            self._deliver("/v1/labels", "labels", batch, count=False)
        return bool(batch)

    _SETTLING = ("sent", "rejected", "failed", "dropped")

    def _count(self, **increments: int) -> None:
        with self._lock:
            self._add(increments)

    def _add(self, increments: dict[str, int]) -> None:
        if self._final:
            return
        for name, n in increments.items():
            setattr(self.stats, name, getattr(self.stats, name) + n)

    def _tally(self, count: bool, **increments: int) -> None:
        """Count an outcome and, in the same breath, take its records out of flight, so
        close() never counts a record twice."""
        settled = sum(increments.get(name, 0) for name in self._SETTLING)
        with self._lock:
            if count:
                self._in_flight -= settled
                self._add(increments)
            else:  # labels are not counted in stats
                self._labels_in_flight -= settled
        if settled:
            with self._idle:
                self._idle.notify_all()

    def _deliver(
        self, path: str, key: str, batch: list[dict[str, Any]], *, count: bool = True
    ) -> None:
        """POST until acknowledged or given up on (see the module docstring)."""
        delay = 0.1
        attempts = 0
        while batch:
            if self._stop.is_set():
                self._tally(count, dropped=len(batch))
                return
            answer = self._post(path, key, batch)
            attempts += 1
            if answer.verdict is _Verdict.STORED:
                self._tally(count, sent=len(batch), batches=1)
                return
            named = {i for i in answer.bad if 0 <= i < len(batch)}
            if named:
                self._tally(count, rejected=len(named))
                batch = [r for i, r in enumerate(batch) if i not in named]
                continue
            if answer.verdict is _Verdict.REJECTED and not answer.bad:
                self._tally(count, rejected=len(batch))
                return
            if answer.verdict in (_Verdict.INVALID, _Verdict.REJECTED) or (
                answer.verdict is _Verdict.BROKEN and attempts >= self.max_attempts
            ):
                self._split(path, key, batch, answer, count=count)
                return
            self._tally(count, retries=1)
            self._stop.wait(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.max_backoff)

    def _split(
        self, path: str, key: str, batch: list[dict[str, Any]], answer: _Answer, *, count: bool
    ) -> None:
        """Deliver each half on its own; a single record the service still refuses is
        dropped and counted."""
        if len(batch) > 1:
            middle = len(batch) // 2
            self._deliver(path, key, batch[:middle], count=count)
            self._deliver(path, key, batch[middle:], count=count)
            return
        log.warning("ml-monitor: dropping a record the service refused (status %s)", answer.status)
        if answer.verdict is not _Verdict.BROKEN:
            self._tally(count, rejected=1)
        else:
            self._tally(count, failed=1)

    def _request_timeout(self) -> float:
        """Within close(), no request may outlive its deadline."""
        if self._close_deadline is None:
            return self.timeout
        left = self._close_deadline - time.monotonic()
        return max(_MIN_REQUEST_TIMEOUT, min(self.timeout, left))

    def _post(self, path: str, key: str, batch: list[dict[str, Any]]) -> _Answer:
        try:
            body = orjson.dumps({key: batch})
        except TypeError:  # a value JSON cannot carry: find it by bisecting
            return _Answer(_Verdict.INVALID)
        try:
            response = self._http.post(path, content=body, timeout=self._request_timeout())
        except httpx.HTTPError:
            return _Answer(_Verdict.TRANSIENT)
        status = response.status_code
        if status < 300:
            return _Answer(_Verdict.STORED, status)
        if status in _TRANSIENT_STATUS:
            return _Answer(_Verdict.TRANSIENT, status)
        log.warning("ml-monitor refused a batch (%s): %s", status, response.text[:500])
        if status == 422:
            bad = _named_indexes(response)
            if bad:
                return _Answer(_Verdict.REJECTED, status, bad)
        if status >= 500:
            return _Answer(_Verdict.BROKEN, status)
        if status in _SPLIT_STATUS:
            return _Answer(_Verdict.INVALID, status)
        return _Answer(_Verdict.REJECTED, status)


def _named_indexes(response: httpx.Response) -> tuple[int, ...]:
    try:
        details = response.json()["error"].get("details", [])
        return tuple(sorted({d["index"] for d in details if isinstance(d.get("index"), int)}))
    except (ValueError, KeyError, TypeError, AttributeError):
        return ()


def _record(item: tuple[Any, ...]) -> dict[str, Any]:
    model, features, prediction, pid, ts, fields = item
    record = {
        "model": model,
        "features": features,
        "prediction_id": pid,
        "timestamp": _iso(ts),
        **fields,
    }
    if prediction is not None:
        record["prediction"] = prediction
    return record


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()
