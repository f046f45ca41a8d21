"""Write prediction logs with binary COPY; claim prediction ids first so resends store nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from monitor.storage.arrays import encode_text_row, register_encoded_arrays
from monitor.storage.rows import PREDICTION_COLUMNS, PREDICTION_TYPES, PredictionRow

_COPY_PREDICTIONS = f"COPY predictions ({', '.join(PREDICTION_COLUMNS)}) FROM STDIN (FORMAT BINARY)"


def copy_predictions(conn: psycopg.Connection[Any], rows: Sequence[PredictionRow]) -> int:
    """Binary COPY of typed rows (arrays as EncodedArray)."""
    with conn.cursor() as cur:
        register_encoded_arrays(cur)
        with cur.copy(_COPY_PREDICTIONS) as copy:
            copy.set_types(list(PREDICTION_TYPES))
            for row in rows:
                if row.extra is None and row.probabilities is None:  # the last two columns
                    copy.write_row(row)
                else:
                    copy.write_row((*row[:-2], *map(_json, row[-2:])))
    return len(rows)


def _json(value: dict[str, Any] | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def claim_prediction_ids(conn: psycopg.Connection[Any], model_id: int, ids: list[str]) -> set[str]:
    """Insert ids not seen before; return those that are new (the rest are resends).

    ``prediction_keys.ts`` is when an id was first seen: retention drops keys by it.
    """
    if not ids:
        return set()
    with conn.cursor() as cur:
        register_encoded_arrays(cur)
        cur.execute(
            "INSERT INTO prediction_keys (model_id, prediction_id, ts) "
            "SELECT %b, i, now() FROM unnest(%b) AS u(i) "
            "ON CONFLICT DO NOTHING RETURNING prediction_id",
            (model_id, encode_text_row(ids)),
        )
        return {r[0] for r in cur.fetchall()}


def store_predictions(
    conn: psycopg.Connection[Any], model_id: int, rows: Sequence[PredictionRow]
) -> list[PredictionRow]:
    """Claim ids, COPY the rows that are new; the caller commits. Returns the rows stored."""
    ids = [r.prediction_id for r in rows if r.prediction_id is not None]
    new_ids = claim_prediction_ids(conn, model_id, ids)
    fresh = [r for r in rows if r.prediction_id is None or r.prediction_id in new_ids]
    if fresh:
        copy_predictions(conn, fresh)
    return fresh
