"""Halves of logged calls waiting for their other half (``integration_pending``).

A receiver locks a call's key for the rest of its transaction (``lock``), reads what is pending
for it, and either completes the pair (``delete``) or keeps its half (``keep``). The lock makes a
request and a response that arrive at the same moment on two replicas meet: the second waits
for the first's commit and then sees its half.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, text

HALVES = ("request", "response")


@dataclass(frozen=True)
class Pending:
    source: str
    model: str
    pair_key: str
    request: Mapping[str, Any] | None
    response: Mapping[str, Any] | None
    received_at: datetime


def lock(conn: Connection, source: str, model: str, pair_key: str) -> None:
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7391006))"),
        {"k": f"{source}\x1f{model}\x1f{pair_key}"},
    )


def read(conn: Connection, source: str, model: str, pair_key: str) -> Pending | None:
    row = conn.execute(
        text(
            "SELECT source, model, pair_key, request, response, received_at "
            "FROM integration_pending "
            "WHERE source = :source AND model = :model AND pair_key = :pair_key"
        ),
        {"source": source, "model": model, "pair_key": pair_key},
    ).first()
    return Pending(*row) if row else None


def keep(
    conn: Connection, source: str, model: str, pair_key: str, half: str, value: Mapping[str, Any]
) -> None:
    """Store (or replace, on a redelivery) one half of a call."""
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES}")
    conn.execute(
        text(
            f"INSERT INTO integration_pending (source, model, pair_key, {half}) "
            "VALUES (:source, :model, :pair_key, :value) "
            f"ON CONFLICT (source, model, pair_key) DO UPDATE SET {half} = EXCLUDED.{half}"
        ),
        {"source": source, "model": model, "pair_key": pair_key, "value": Jsonb(dict(value))},
    )


def delete(conn: Connection, source: str, model: str, pair_key: str) -> None:
    conn.execute(
        text(
            "DELETE FROM integration_pending "
            "WHERE source = :source AND model = :model AND pair_key = :pair_key"
        ),
        {"source": source, "model": model, "pair_key": pair_key},
    )


def count(conn: Connection, source: str, limit: int) -> int:
    """How many calls of ``source`` are pending, counted up to ``limit`` (a bounded scan)."""
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM integration_pending "
                "WHERE source = :source LIMIT :limit) AS p"
            ),
            {"source": source, "limit": limit},
        ).scalar_one()
    )


def take_expired(conn: Connection, source: str, before: datetime, limit: int) -> list[Pending]:
    """Lock and return up to ``limit`` calls pending since before ``before``; another replica
    flushing at the same time skips them."""
    rows = conn.execute(
        text(
            "SELECT source, model, pair_key, request, response, received_at "
            "FROM integration_pending WHERE source = :source AND received_at < :before "
            "ORDER BY received_at LIMIT :limit FOR UPDATE SKIP LOCKED"
        ),
        {"source": source, "before": before, "limit": limit},
    )
    return [Pending(*row) for row in rows]


def is_stored(conn: Connection, model: str, prediction_id: str) -> bool:
    """Whether ``model`` already stored ``prediction_id`` (a redelivered half of a done call)."""
    return bool(
        conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM prediction_keys k JOIN models m ON m.id = k.model_id "
                "WHERE m.name = :model AND k.prediction_id = :pid)"
            ),
            {"model": model, "pid": prediction_id},
        ).scalar_one()
    )
