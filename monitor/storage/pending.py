"""Halves of logged calls waiting for their other half (``integration_pending``).

A half arrives in two steps, each one statement: ``take`` removes and returns the other half if
it is waiting (the call is complete: the receiver stores it, nothing more is written here);
otherwise ``keep`` stores the half. Its upsert makes a request and a response that arrive at the
same moment on two replicas meet (the second waits on the first's row and then sees its half,
returned so the receiver completes the call), and a call already stored (its first row's id is
claimed) is not started again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
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


@dataclass(frozen=True)
class Kept:
    other: Mapping[str, Any] | None  # the other half, when it came meanwhile (see module doc)
    new: bool  # the call was not pending before this half


def other_half(half: str) -> str:
    if half not in HALVES:
        raise ValueError(f"half must be one of {HALVES}")
    return HALVES[1 - HALVES.index(half)]


def take(
    conn: Connection, source: str, model: str, pair_key: str, half: str
) -> Mapping[str, Any] | None:
    """Remove the call if the half other than ``half`` is waiting, and return that half."""
    other = other_half(half)
    row = conn.execute(
        text(
            "DELETE FROM integration_pending "
            "WHERE source = :source AND model = :model AND pair_key = :pair_key "
            f"AND {other} IS NOT NULL RETURNING {other}::text"
        ),
        {"source": source, "model": model, "pair_key": pair_key},
    ).first()
    return orjson.loads(row[0]) if row else None


def keep(
    conn: Connection,
    source: str,
    model: str,
    pair_key: str,
    half: str,
    value: bytes,
    stored_id: str,
) -> Kept | None:
    """Keep ``half`` (JSON text) of a call; None when the call was stored already (its row
    ``stored_id`` exists for ``model``): a redelivery, nothing kept."""
    other = other_half(half)
    row = conn.execute(
        text(
            f"INSERT INTO integration_pending (source, model, pair_key, {half}) "
            "SELECT :source, :model, :pair_key, CAST(:value AS jsonb) WHERE NOT EXISTS ("
            "SELECT 1 FROM prediction_keys k JOIN models m ON m.id = k.model_id "
            "WHERE m.name = :model AND k.prediction_id = :stored_id) "
            f"ON CONFLICT (source, model, pair_key) DO UPDATE SET {half} = EXCLUDED.{half} "
            f"RETURNING {other}::text, xmax = 0"
        ),
        {
            "source": source,
            "model": model,
            "pair_key": pair_key,
            "value": value.decode(),
            "stored_id": stored_id,
        },
    ).first()
    if row is None:
        return None
    waiting, new = row
    return Kept(orjson.loads(waiting) if waiting else None, bool(new))


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
