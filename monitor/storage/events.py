"""Deployment events: deployed, rolled_back, model_loaded (with load_seconds)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from monitor.storage.tables import events


def add_event(
    conn: Connection,
    model_id: int,
    *,
    kind: str,
    version: str,
    variant: str | None,
    ts: datetime | None,
    load_seconds: float | None,
    details: dict[str, Any] | None,
) -> int:
    result = conn.execute(
        insert(events)
        .values(
            model_id=model_id,
            kind=kind,
            model_version=version,
            variant=variant,
            ts=ts or datetime.now(UTC),
            load_seconds=load_seconds,
            details=details,
        )
        .returning(events.c.id)
    )
    return int(result.scalar_one())


def recent_events(conn: Connection, model_id: int, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            events.c.kind,
            events.c.model_version,
            events.c.variant,
            events.c.ts,
            events.c.load_seconds,
        )
        .where(events.c.model_id == model_id)
        .order_by(events.c.ts.desc())
        .limit(limit)
    ).mappings()
    return [{**r, "ts": r["ts"].isoformat()} for r in rows]
