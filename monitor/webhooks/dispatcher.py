"""Deliver due outbox events: sign, POST, and record delivered / retry (with backoff) / dead.

Runs as a scheduler job every ``DISPATCH_INTERVAL_SECONDS`` in ``monitor serve``; any number of
replicas may run it at once (events are leased with ``FOR UPDATE SKIP LOCKED``). The HTTP
transport is a parameter, so tests pass an ``httpx.MockTransport`` instead of a network.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.jobs.context import JobContext
from monitor.storage.outbox import Claimed, DeliveryOutcome, claim_next, record_outcome
from monitor.webhooks.outbox import webhook_settings
from monitor.webhooks.payload import canonical_body
from monitor.webhooks.signing import signed_headers

log = logging.getLogger(__name__)

DISPATCH_INTERVAL_SECONDS = 5
_ERROR_CHARS = 500
_MIN_JITTER = 0.8


@dataclass(frozen=True)
class DispatchPolicy:
    """Retry schedule: attempt n failed -> wait min(max_delay, base_delay * 2**(n-1)), scaled by
    a random factor in [0.8, 1] so receivers that failed together do not retry together;
    after ``max_attempts`` failed attempts the event is dead (``POST /v1/webhooks/{id}/retry``
    gives it a fresh budget).

    The defaults are a schedule in hours, like the webhook senders users know (Svix, Stripe):
    1 min, 2, 4, ... doubling to a 1 h cap, 36 attempts. Even with every wait at its shortest
    the attempts span more than 24 h (nominally 30 h), so a receiver that is down for less
    than a day still gets its event."""

    max_attempts: int = 36
    base_delay_seconds: float = 60.0
    max_delay_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    max_events_per_run: int = 50

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 < self.base_delay_seconds <= self.max_delay_seconds:
            raise ValueError("base_delay_seconds must be > 0 and <= max_delay_seconds")
        if self.timeout_seconds <= 0 or self.max_events_per_run < 1:
            raise ValueError("timeout_seconds and max_events_per_run must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchPolicy:
        return cls(
            max_attempts=settings.webhook_max_attempts,
            base_delay_seconds=settings.webhook_base_delay_seconds,
            max_delay_seconds=settings.webhook_max_delay_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
        )

    @property
    def lease(self) -> timedelta:
        """How long a claimed event is left alone: longer than any one attempt can take."""
        return timedelta(seconds=4 * self.timeout_seconds + 30)

    def nominal_delay(self, failed_attempts: int) -> timedelta:
        """The wait after ``failed_attempts`` failures, before jitter."""
        exponent = min(failed_attempts - 1, 62)
        return timedelta(
            seconds=min(self.max_delay_seconds, self.base_delay_seconds * 2.0**exponent)
        )

    def backoff(self, failed_attempts: int, rng: random.Random) -> timedelta:
        return self.nominal_delay(failed_attempts) * rng.uniform(_MIN_JITTER, 1.0)

    def span(self) -> tuple[timedelta, timedelta]:
        """From the first attempt to the last: (shortest, nominal)."""
        nominal = sum(
            (self.nominal_delay(n) for n in range(1, self.max_attempts)), start=timedelta()
        )
        return nominal * _MIN_JITTER, nominal


@dataclass(frozen=True)
class Attempt:
    ok: bool
    error: str | None = None


def send(client: httpx.Client, claimed: Claimed, timestamp: int) -> Attempt:
    """One signed POST to the model's webhook. Transport failures are an outcome, not an error."""
    try:
        webhook = webhook_settings({"webhook": claimed.webhook})
    except ConfigError as exc:
        return Attempt(False, str(exc))
    if webhook is None:
        return Attempt(False, f"model {claimed.model!r} has no webhook configured")
    body = canonical_body(claimed.payload)
    headers = signed_headers(str(claimed.event_id), webhook.secret, timestamp, body)
    try:
        response = client.post(webhook.url, content=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Attempt(False, f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS])
    if response.is_success:
        return Attempt(True)
    return Attempt(False, f"HTTP {response.status_code}: {response.text}"[:_ERROR_CHARS])


def _outcome(attempt: Attempt, claimed: Claimed, policy: DispatchPolicy) -> DeliveryOutcome:
    if attempt.ok:
        return "delivered"
    return "dead" if claimed.attempts >= policy.max_attempts else "retry"


def dispatch_pending(
    ctx: JobContext,
    *,
    transport: httpx.BaseTransport | None = None,
    now: datetime | None = None,
    policy: DispatchPolicy | None = None,
    rng: random.Random | None = None,
) -> Counter[DeliveryOutcome]:
    """Deliver every due event (up to ``policy.max_events_per_run``), one at a time.

    ``now`` fixes the clock (tests); by default each attempt reads the wall clock, so the
    signed timestamp is fresh however long earlier deliveries took."""
    policy = policy or DispatchPolicy.from_settings(ctx.settings)
    rng = rng or random.Random()
    clock: Callable[[], datetime] = (lambda: now) if now is not None else ctx.clock
    outcomes: Counter[DeliveryOutcome] = Counter()
    with httpx.Client(transport=transport, timeout=policy.timeout_seconds) as client:
        for _ in range(policy.max_events_per_run):
            started = clock()
            with ctx.db.begin() as conn:
                claimed = claim_next(conn, started, started + policy.lease)
            if claimed is None:
                break
            attempt = send(client, claimed, int(started.timestamp()))
            outcome = _outcome(attempt, claimed, policy)
            _record(ctx, claimed, attempt, outcome, policy, rng, clock())
            outcomes[outcome] += 1
    return outcomes


def _record(
    ctx: JobContext,
    claimed: Claimed,
    attempt: Attempt,
    outcome: DeliveryOutcome,
    policy: DispatchPolicy,
    rng: random.Random,
    finished: datetime,
) -> None:
    retry_at = finished + policy.backoff(claimed.attempts, rng) if outcome == "retry" else None
    with ctx.db.begin() as conn:
        kept = record_outcome(
            conn, claimed, outcome, now=finished, next_attempt_at=retry_at, error=attempt.error
        )
    if not kept:
        log.warning("webhook event %s: lease lost before the outcome was stored", claimed.event_id)
    elif outcome != "delivered":
        log.warning(
            "webhook event %s for %s: attempt %d failed (%s), %s",
            claimed.event_id,
            claimed.model,
            claimed.attempts,
            attempt.error,
            "dead-lettered" if outcome == "dead" else f"retry at {retry_at}",
        )
