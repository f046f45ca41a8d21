"""The Python SDK: log predictions from a model server without ever slowing or breaking it.

    client = MonitorClient("http://127.0.0.1:8000", token="...")
    pid = client.log("fraud", {"amount": 12.5, "country": "DE"}, 0.87, latency_ms=23.4)
    client.label("fraud", pid, 1)          # later, when ground truth arrives
    client.close()                          # also runs at interpreter exit

``log`` only appends to an in-memory queue (a few microseconds). Sender threads (``senders``,
two by default: two batches in flight) batch by size and time and POST to ``/v1/predictions``,
retrying with backoff on 503, 429, 5xx and network errors. Every record carries a
``prediction_id`` fixed at ``log`` time, so a retry of a batch the server already stored stores
nothing twice. When the queue is full, new records are
dropped and counted, never blocking the caller.
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
from typing import Any

import httpx
import orjson

log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class ClientStats:
    sent: int = 0
    dropped: int = 0
    rejected: int = 0
    retries: int = 0
    batches: int = 0


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
        senders: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``senders``: batches in flight at once (each sender is a thread)."""
        if batch_size <= 0 or max_queue <= 0 or flush_interval <= 0 or senders <= 0:
            raise ValueError("batch_size, max_queue, flush_interval, senders must be positive")
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.max_backoff = max_backoff
        self.stats = ClientStats()
        self._queue: deque[tuple[Any, ...]] = deque()
        self._labels: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._lock = threading.Lock()  # queue hand-off, in-flight count and stats
        self._closing = False
        self._ids = itertools.count()
        self._prefix = os.urandom(8).hex()
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
        self._queue.append((model, features, prediction, pid, timestamp or time.time(), fields))
        if len(self._queue) >= self.batch_size:
            self._wake.set()
        return pid

    def label(
        self, model: str, prediction_id: str, label: Any, timestamp: float | None = None
    ) -> None:
        """Queue delayed ground truth for an earlier prediction."""
        self._labels.append(
            {
                "model": model,
                "prediction_id": prediction_id,
                "label": label,
                "timestamp": _iso(timestamp or time.time()),
            }
        )
        self._wake.set()

    @property
    def pending(self) -> int:
        """Records queued or in flight, not yet acknowledged."""
        return len(self._queue) + self._in_flight

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self._queue or self._labels or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(remaining, 0.05))
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Flush, then stop the sender threads. Records not delivered by then are dropped."""
        if self._closing:
            return
        self.flush(timeout)
        self._closing = True
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.stats.dropped += len(self._queue)
        self._queue.clear()
        self._http.close()
        atexit.unregister(self.close)

    def __enter__(self) -> MonitorClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the sender threads ----------------------------------------------------------------
    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            while (self._queue or self._labels) and not self._closing:
                self._send_labels()
                self._send_predictions()
            with self._idle:
                self._idle.notify_all()

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:  # taken and counted in flight at once, so flush() never sees a gap
            items = [self._queue.popleft() for _ in range(min(len(self._queue), self.batch_size))]
            self._in_flight += len(items)
        batch: list[dict[str, Any]] = []
        for model, features, prediction, pid, ts, fields in items:
            record = {
                "model": model,
                "features": features,
                "prediction_id": pid,
                "timestamp": _iso(ts),
                **fields,
            }
            if prediction is not None:
                record["prediction"] = prediction
            batch.append(record)
        return batch

    def _send_predictions(self) -> None:
        batch = self._take()
        if batch:
            self._deliver("/v1/predictions", "predictions", batch)
            with self._lock:
                self._in_flight -= len(batch)

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, n in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def _send_labels(self) -> None:
        with self._lock:
            batch = [self._labels.popleft() for _ in range(min(len(self._labels), self.batch_size))]
        if batch:
            self._deliver("/v1/labels", "labels", batch, count=False)

    def _deliver(
        self, path: str, key: str, batch: list[dict[str, Any]], *, count: bool = True
    ) -> None:
        """POST until acknowledged; on 422 drop the named bad records and send the rest."""
        delay = 0.1
        while batch:
            outcome = self._post(path, key, batch)
            if outcome is None:
                if count:
                    self._count(sent=len(batch), batches=1)
                return
            if isinstance(outcome, list):
                bad = set(outcome)
                self._count(rejected=len(bad) if bad else len(batch))
                batch = [r for i, r in enumerate(batch) if i not in bad] if bad else []
                continue
            if self._closing:
                if count:
                    self._count(dropped=len(batch))
                return
            self._count(retries=1)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.max_backoff)

    def _post(self, path: str, key: str, batch: list[dict[str, Any]]) -> list[int] | str | None:
        """None when stored, a list of bad indexes when rejected, a reason string to retry."""
        try:
            response = self._http.post(path, content=orjson.dumps({key: batch}))
        except httpx.HTTPError as exc:
            return f"network: {exc}"
        if response.status_code < 300:
            return None
        if response.status_code in _RETRY_STATUS:
            return f"status {response.status_code}"
        log.warning(
            "ml-monitor rejected a batch (%s): %s", response.status_code, response.text[:500]
        )
        try:
            details = response.json()["error"].get("details", [])
            return sorted({d["index"] for d in details if "index" in d})
        except (ValueError, KeyError, TypeError):
            return []


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()
