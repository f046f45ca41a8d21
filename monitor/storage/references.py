"""Reference data sets (training data, or a frozen production window) in typed arrays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, text

from monitor.storage.rows import REFERENCE_COLUMNS, REFERENCE_TYPES, ReferenceRow

_COPY = (
    f"COPY reference_rows (reference_id, {', '.join(REFERENCE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
)
_TYPES = ["int4", *REFERENCE_TYPES]


def create_set(
    conn: Connection,
    model_id: int,
    version: str,
    source: str,
    window: tuple[datetime, datetime] | None = None,
) -> int:
    """A new, not yet active, reference set."""
    return int(
        conn.execute(
            text(
                "INSERT INTO reference_sets (model_id, model_version, source, window_from, "
                "window_to, active) VALUES (:m, :v, :s, :f, :t, false) RETURNING id"
            ),
            {
                "m": model_id,
                "v": version,
                "s": source,
                "f": window[0] if window else None,
                "t": window[1] if window else None,
            },
        ).scalar_one()
    )


def copy_rows(conn: Connection, reference_id: int, rows: Sequence[ReferenceRow]) -> int:
    raw: psycopg.Connection[Any] | None = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(_COPY) as copy:
        copy.set_types(_TYPES)
        for row in rows:
            if row.probabilities is None:  # the last column
                copy.write_row((reference_id, *row))
            else:
                copy.write_row((reference_id, *row[:-1], Jsonb(row.probabilities)))
    return len(rows)


def copy_window(
    conn: Connection,
    reference_id: int,
    model_id: int,
    version: str | None,
    start: datetime,
    end: datetime,
) -> int:
    """Freeze the production rows of [start, end) (with their labels) into the reference."""
    version_filter = "AND p.model_version = :v" if version else ""
    result = conn.execute(
        text(
            "INSERT INTO reference_rows (reference_id, num, cat, prediction, prediction_text, "
            "label, label_text, probabilities) SELECT :rid, p.num, p.cat, p.prediction, "
            "p.prediction_text, l.label, l.label_text, p.probabilities "
            "FROM predictions p LEFT JOIN labels l "
            "ON l.model_id = p.model_id AND l.prediction_id = p.prediction_id "
            f"WHERE p.model_id = :m AND p.ts >= :f AND p.ts < :t {version_filter}"
        ),
        {"rid": reference_id, "m": model_id, "v": version, "f": start, "t": end},
    )
    return int(result.rowcount)


def activate(conn: Connection, reference_id: int, model_id: int, version: str, rows: int) -> None:
    """Make this set the model's (version's) reference; the previous one stays as history."""
    conn.execute(
        text(
            "UPDATE reference_sets SET active = false WHERE model_id = :m AND model_version = :v "
            "AND active"
        ),
        {"m": model_id, "v": version},
    )
    conn.execute(
        text("UPDATE reference_sets SET active = true, row_count = :n WHERE id = :id"),
        {"id": reference_id, "n": rows},
    )


def active_set(conn: Connection, model_id: int, version: str) -> dict[str, Any] | None:
    """The reference for a version, falling back to the model-wide one (version '')."""
    row = (
        conn.execute(
            text(
                "SELECT id, model_version, source, window_from, window_to, row_count, created_at "
                "FROM reference_sets WHERE model_id = :m AND active AND model_version IN (:v, '') "
                "ORDER BY model_version = :v DESC LIMIT 1"
            ),
            {"m": model_id, "v": version},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None
