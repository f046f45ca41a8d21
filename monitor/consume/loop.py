"""The consumer loop: fetch a batch, store it in one transaction, then (and only then) ack it.

At least once plus idempotent prediction ids is stored exactly once: a crash anywhere before
the ack means the broker delivers the batch again, and the ids already claimed store nothing.

- A message we cannot decode, or whose records ingest refuses (422, 409), is published to the
  dead-letter topic (or skipped, if there is none) with its reason, counted, and acked with the
  batch, so one bad message never blocks the stream.
- While PostgreSQL is unreachable nothing is acked: the same batch is retried with capped
  exponential backoff until it commits or the consumer is told to stop.
- Stopping (SIGINT / SIGTERM set ``stop``) lets the batch in hand finish and be acked first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.consume.metrics import ConsumerMetrics
from monitor.consume.source import DeadLetter, Source
from monitor.consume.units import Decoder, Unit
from monitor.errors import (
    BrokerError,
    ClientError,
    StorageError,
    StorageUnavailable,
    ValidationFailed,
)

log = logging.getLogger(__name__)

Store = Callable[[list[Any]], object]  # IngestService.predictions, bound to a kind


@dataclass(frozen=True)
class Backoff:
    first_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_seconds, self.first_seconds * 2 ** min(attempt, 16)))


@dataclass(frozen=True)
class LoopSettings:
    batch_size: int = 500
    fetch_timeout_seconds: float = 1.0
    lag_every_seconds: float = 5.0
    backoff: Backoff = field(default_factory=Backoff)


class Stopped(Exception):
    """Told to stop while the batch could not be committed: leave it unacked."""


class Consumer:
    def __init__(
        self,
        source: Source,
        decoder: Decoder,
        store: Store,
        metrics: ConsumerMetrics,
        settings: LoopSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.decoder = decoder
        self.store = store
        self.metrics = metrics
        self.settings = settings or LoopSettings()
        self.clock = clock
        self._lag_at = -1e18

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished and acked first."""
        failures = 0
        while not stop.is_set():
            try:
                await self.step(stop)
                failures = 0
            except Stopped:
                log.warning("stopped with a batch not committed; the broker will redeliver it")
                return
            except BrokerError as exc:
                # unacked messages stay with the broker; reconnecting is the client's job
                self.metrics.retries.labels(self.source.kind, "broker_error").inc()
                delay = self.settings.backoff.delay(failures)
                failures += 1
                log.warning("broker error; retrying in %.1fs: %s", delay, exc)
                if await _wait(stop, delay):
                    return

    async def step(self, stop: asyncio.Event | None = None) -> int:
        """One batch: returns the number of messages acknowledged."""
        stop = stop or asyncio.Event()
        messages = await self.source.fetch(
            self.settings.batch_size, self.settings.fetch_timeout_seconds
        )
        started = self.clock()
        decoded = self.decoder.decode(messages, started)
        units, rejects = await self._store(decoded.units, stop)
        rejects = decoded.rejects + rejects
        done = [m for u in units for m in u.messages] + [r.message for r in rejects]
        published: Sequence[DeadLetter] = []
        if rejects:
            published = await self.source.dead_letter(rejects)
        if done:
            await self.source.ack(done)
            self._count(units, rejects, published)
            self.metrics.batch_seconds.labels(self.source.kind).observe(self.clock() - started)
        await self._update_lag()
        return len(done)

    async def _store(
        self, units: list[Unit], stop: asyncio.Event
    ) -> tuple[list[Unit], list[DeadLetter]]:
        """Commit every unit that ingest accepts (one transaction), naming those it refuses."""
        rejects: list[DeadLetter] = []
        attempt = 0
        while units:
            try:
                await asyncio.to_thread(self.store, [r for u in units for r in u.records])
                break
            except ValidationFailed as exc:
                bad = _units_named(units, exc)
                if not bad:  # a problem with no record index: find the culprits one by one
                    return await self._store_one_by_one(units, stop, rejects)
                rejects += [d for u in bad for d in _letters(u, "invalid", exc)]
                units = [u for u in units if u not in bad]
            except ClientError:
                return await self._store_one_by_one(units, stop, rejects)
            except StorageError as exc:
                reason = (
                    "database_unavailable"
                    if isinstance(exc, StorageUnavailable)
                    else ("storage_error")
                )
                self.metrics.retries.labels(self.source.kind, reason).inc()
                delay = self.settings.backoff.delay(attempt)
                log.warning("batch not stored (%s); retrying in %.1fs: %s", reason, delay, exc)
                attempt += 1
                if await _wait(stop, delay):
                    raise Stopped from exc
        return units, rejects

    async def _store_one_by_one(
        self, units: list[Unit], stop: asyncio.Event, rejects: list[DeadLetter]
    ) -> tuple[list[Unit], list[DeadLetter]]:
        stored: list[Unit] = []
        for unit in units:
            kept, refused = await self._store_single(unit, stop)
            stored += kept
            rejects += refused
        return stored, rejects

    async def _store_single(
        self, unit: Unit, stop: asyncio.Event
    ) -> tuple[list[Unit], list[DeadLetter]]:
        try:
            await asyncio.to_thread(self.store, unit.records)
        except ClientError as exc:
            reason = "invalid" if isinstance(exc, ValidationFailed) else exc.code
            return [], _letters(unit, reason, exc)
        except StorageError:
            # the database is down, or this unit makes it fail: the batch path tells which
            return await self._store([unit], stop)
        return [unit], []

    def _count(
        self,
        units: Sequence[Unit],
        rejects: Sequence[DeadLetter],
        published: Sequence[DeadLetter],
    ) -> None:
        kind = self.source.kind
        for unit in units:
            for message in unit.messages:
                self.metrics.messages.labels(kind, message.topic).inc()
        for letter in rejects:
            topic = letter.message.topic
            self.metrics.messages.labels(kind, topic).inc()
            self.metrics.rejected.labels(kind, topic, letter.reason).inc()
        for letter in published:
            self.metrics.dead_lettered.labels(kind, letter.message.topic).inc()
        self.metrics.last_commit.labels(kind).set(time.time())

    async def _update_lag(self) -> None:
        now = self.clock()
        if now - self._lag_at < self.settings.lag_every_seconds:
            return
        self._lag_at = now
        for topic, lag in (await self.source.lag()).items():
            self.metrics.lag.labels(self.source.kind, topic).set(lag)


def _units_named(units: list[Unit], exc: ValidationFailed) -> list[Unit]:
    """The units holding the records a 422 names (indexes into the flattened batch)."""
    owner: list[Unit] = [u for u in units for _ in u.records]
    bad_ids = {
        id(owner[p.index]) for p in exc.details if p.index is not None and p.index < len(owner)
    }
    return [u for u in units if id(u) in bad_ids]


def _letters(unit: Unit, reason: str, exc: ClientError) -> list[DeadLetter]:
    """A unit's messages share its fate: each is dead-lettered with the same reason."""
    # the first few problems are enough to see what is wrong
    problems = "; ".join(f"{p.field or 'record'}: {p.problem}" for p in exc.details[:10])
    error = f"{exc.message}: {problems}" if problems else exc.message
    return [DeadLetter(m, reason, error[:2000]) for m in unit.messages]


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, waking early when told to stop; True if stopped."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
