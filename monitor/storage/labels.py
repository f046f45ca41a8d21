"""Delayed labels: upserted by (model, prediction_id); joined to predictions by the jobs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text

from monitor.storage.rows import LabelRow

_UPSERT = text(
    "INSERT INTO labels (model_id, prediction_id, label, label_text, ts) "
    "SELECT :model_id, i, l, t, ts FROM unnest("
    "CAST(:ids AS text[]), CAST(:labels AS float8[]), CAST(:texts AS text[]), "
    "CAST(:ts AS timestamptz[])) AS u(i, l, t, ts) "
    "ON CONFLICT (model_id, prediction_id) DO UPDATE SET label = excluded.label, "
    "label_text = excluded.label_text, ts = excluded.ts, received_at = now()"
)


def upsert_labels(conn: Connection, model_id: int, rows: Sequence[LabelRow]) -> int:
    if not rows:
        return 0
    ids, values, texts, stamps = zip(*rows, strict=True)
    conn.execute(
        _UPSERT,
        {
            "model_id": model_id,
            "ids": list(ids),
            "labels": list(values),
            "texts": list(texts),
            "ts": list(stamps),
        },
    )
    return len(rows)
