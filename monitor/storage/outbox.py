"""The webhook outbox in PostgreSQL: enqueue in the caller's transaction, claim, record outcomes.

An event is written by whoever decides to retrain (a job, the Alertmanager receiver, through
``webhooks.outbox.enqueue_retrain``) in the same transaction as its evidence, and delivered
later by ``webhooks.dispatcher.dispatch_pending``. Two guards
keep receivers from being flooded:

* ``event_id`` is the primary key: an event enqueued twice is stored once.
* ``webhook_cooldowns`` holds one row per model; enqueueing upserts it only when the model's
  cooldown has passed. The upsert takes the row lock, so of two replicas deciding at once the
  second waits, sees the first one's fresh timestamp and enqueues nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import Connection, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping

from monitor.errors import Conflict, NotFound
from monitor.storage.tables import (
    models,
    webhook_cooldowns,
    webhook_delivery_counts,
    webhook_events,
)

EnqueueOutcome = Literal["enqueued", "duplicate", "cooldown", "no_webhook"]
Status = Literal["pending", "delivered", "dead"]
DeliveryOutcome = Literal["delivered", "retry", "dead"]
STATUSES: tuple[Status, ...] = ("pending", "delivered", "dead")
DELIVERY_OUTCOMES: tuple[DeliveryOutcome, ...] = ("delivered", "retry", "dead")


@dataclass(frozen=True)
class Enqueued:
    event_id: UUID
    outcome: EnqueueOutcome

    @property
    def stored(self) -> bool:
        return self.outcome == "enqueued"


def enqueue_event(
    conn: Connection,
    *,
    event_id: UUID,
    model_id: int,
    model_version: str,
    reason: str,
    window: str,
    payload: Mapping[str, Any],
    cooldown_seconds: int | None,
    now: datetime,
) -> Enqueued:
    """Write an event in the caller's transaction, unless it is a duplicate or the model is
    cooling down (``cooldown_seconds=None``: an event the cooldown neither holds nor starts).
    Commits with the caller, or not at all."""
    if conn.execute(select(exists().where(webhook_events.c.event_id == event_id))).scalar():
        return Enqueued(event_id, "duplicate")
    savepoint = conn.begin_nested()
    if cooldown_seconds is not None and not _claim_cooldown(
        conn, model_id, event_id, now, cooldown_seconds
    ):
        savepoint.rollback()
        return Enqueued(event_id, "cooldown")
    inserted = conn.execute(
        pg_insert(webhook_events)
        .values(
            event_id=event_id,
            model_id=model_id,
            model_version=model_version,
            reason=reason,
            window=window,
            payload=dict(payload),
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(webhook_events.c.event_id)
    ).first()
    if inserted is None:  # the same event committed by someone else meanwhile
        savepoint.rollback()
        return Enqueued(event_id, "duplicate")
    savepoint.commit()
    return Enqueued(event_id, "enqueued")


def _claim_cooldown(
    conn: Connection, model_id: int, event_id: UUID, now: datetime, cooldown_seconds: int
) -> bool:
    stmt = pg_insert(webhook_cooldowns).values(
        model_id=model_id, event_id=event_id, enqueued_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["model_id"],
        set_={"event_id": stmt.excluded.event_id, "enqueued_at": stmt.excluded.enqueued_at},
        where=webhook_cooldowns.c.enqueued_at <= now - timedelta(seconds=cooldown_seconds),
    )
    return conn.execute(stmt.returning(webhook_cooldowns.c.model_id)).first() is not None


# -- the dispatcher's side ------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A due event leased to one dispatcher: ``attempts`` already counts this attempt."""

    event_id: UUID
    model: str
    attempts: int
    payload: Mapping[str, Any]
    webhook: Mapping[str, Any] | None


def claim_next(conn: Connection, now: datetime, lease_until: datetime) -> Claimed | None:
    """Lease the oldest due event: other dispatchers skip it (SKIP LOCKED) while this transaction
    runs, and after commit until ``lease_until`` (its next_attempt_at). A dispatcher that dies
    mid-delivery leaves the event due again when the lease ends: delivery is at least once."""
    due = (
        select(webhook_events.c.event_id)
        .where(webhook_events.c.status == "pending", webhook_events.c.next_attempt_at <= now)
        .order_by(webhook_events.c.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    row = (
        conn.execute(
            update(webhook_events)
            .where(webhook_events.c.event_id == due, models.c.id == webhook_events.c.model_id)
            .values(attempts=webhook_events.c.attempts + 1, next_attempt_at=lease_until)
            .returning(
                webhook_events.c.event_id,
                webhook_events.c.attempts,
                webhook_events.c.payload,
                models.c.name,
                models.c.config["webhook"].label("webhook"),
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Claimed(row["event_id"], row["name"], row["attempts"], row["payload"], row["webhook"])


def record_outcome(
    conn: Connection,
    claimed: Claimed,
    outcome: DeliveryOutcome,
    *,
    now: datetime,
    next_attempt_at: datetime | None = None,
    error: str | None = None,
) -> bool:
    """Store the result of one attempt and count it. False when the lease was lost meanwhile
    (another dispatcher re-claimed the event), in which case nothing is written."""
    status: Status = "pending" if outcome == "retry" else outcome
    values: dict[str, Any] = {"status": status, "last_error": error}
    if outcome == "delivered":
        values["delivered_at"] = now
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    result = conn.execute(
        update(webhook_events)
        .where(
            webhook_events.c.event_id == claimed.event_id,
            webhook_events.c.attempts == claimed.attempts,
            webhook_events.c.status == "pending",
        )
        .values(**values)
    )
    if not result.rowcount:
        return False
    stmt = pg_insert(webhook_delivery_counts).values(outcome=outcome, total=1)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["outcome"], set_={"total": webhook_delivery_counts.c.total + 1}
        )
    )
    return True


# -- reading and operating the outbox -------------------------------------------------------

_VIEW_COLUMNS = (
    webhook_events.c.event_id,
    models.c.name.label("model"),
    webhook_events.c.model_version,
    webhook_events.c.reason,
    webhook_events.c.window,
    webhook_events.c.status,
    webhook_events.c.attempts,
    webhook_events.c.next_attempt_at,
    webhook_events.c.last_error,
    webhook_events.c.created_at,
    webhook_events.c.delivered_at,
    webhook_events.c.payload,
)


def _view(row: RowMapping) -> dict[str, Any]:
    out = dict(row)
    out["event_id"] = str(row["event_id"])
    for key in ("next_attempt_at", "created_at", "delivered_at"):
        out[key] = row[key].isoformat() if row[key] is not None else None
    return out


def list_events(
    conn: Connection, *, status: Status | None = None, model: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Newest first: what ``GET /v1/webhooks`` shows (``status=dead`` for the dead letters)."""
    query = select(*_VIEW_COLUMNS).join(models, models.c.id == webhook_events.c.model_id)
    if status is not None:
        query = query.where(webhook_events.c.status == status)
    if model is not None:
        query = query.where(models.c.name == model)
    query = query.order_by(webhook_events.c.created_at.desc()).limit(limit)
    return [_view(r) for r in conn.execute(query).mappings()]


def get_event(conn: Connection, event_id: UUID) -> dict[str, Any]:
    row = (
        conn.execute(
            select(*_VIEW_COLUMNS)
            .join(models, models.c.id == webhook_events.c.model_id)
            .where(webhook_events.c.event_id == event_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"webhook event {event_id} is not known")
    return _view(row)


def retry_event(conn: Connection, event_id: UUID, now: datetime | None = None) -> dict[str, Any]:
    """Make a dead (or pending) event due now with a fresh attempt budget."""
    result = conn.execute(
        update(webhook_events)
        .where(webhook_events.c.event_id == event_id, webhook_events.c.status != "delivered")
        .values(status="pending", attempts=0, next_attempt_at=now or func.now())
    )
    event = get_event(conn, event_id)
    if not result.rowcount:
        raise Conflict(f"webhook event {event_id} was already delivered")
    return event


def delivery_totals(conn: Connection) -> dict[str, int]:
    """Persisted ``monitor_webhook_deliveries_total`` by outcome, zero where none yet."""
    rows = conn.execute(select(webhook_delivery_counts.c.outcome, webhook_delivery_counts.c.total))
    totals: dict[str, int] = dict.fromkeys(DELIVERY_OUTCOMES, 0)
    totals.update({outcome: int(total) for outcome, total in rows})
    return totals


def status_counts(conn: Connection) -> dict[str, int]:
    """Events in the outbox by status, zero where none."""
    rows = conn.execute(
        select(webhook_events.c.status, func.count()).group_by(webhook_events.c.status)
    )
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    counts.update({status: int(n) for status, n in rows})
    return counts
