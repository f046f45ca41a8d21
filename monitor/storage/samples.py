"""Bounded random samples of rows for the Evidently report: the reference and a window.

Sampled in PostgreSQL (``random() < p`` with a LIMIT), so a sample costs seconds whatever the
window holds. A row is ``(num, cat, prediction, prediction_text)``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from monitor.storage.database import Database
from monitor.storage.references import active_set
from monitor.storage.span import Span

_OVERSAMPLE = 1.2  # random() < p keeps about p * n rows; ask for a little more, then LIMIT
SampleRow = tuple[Any, Any, Any, Any]


def sample_rows(
    db: Database, span: Span, version: str, limit: int
) -> tuple[list[SampleRow], list[SampleRow]] | None:
    """(reference rows, window rows), at most ``limit`` each, of the version's active reference
    and of ``span`` (every version when ``version`` is ""); None without an active reference."""
    with db.connect() as conn:
        reference = active_set(conn, span.model_id, version)
        if reference is None:
            return None
        return _reference_rows(conn, reference, limit), _current_rows(conn, span, version, limit)


def _share(count: int, limit: int) -> float:
    return 1.0 if count <= limit else min(1.0, _OVERSAMPLE * limit / count)


def _reference_rows(conn: Connection, reference: dict[str, Any], limit: int) -> list[SampleRow]:
    rows = conn.execute(
        text(
            "SELECT num, cat, prediction, prediction_text FROM reference_rows "
            "WHERE reference_id = :r AND random() < :p LIMIT :n"
        ),
        {"r": reference["id"], "p": _share(int(reference["row_count"]), limit), "n": limit},
    )
    return [tuple(r) for r in rows]


def _current_rows(conn: Connection, span: Span, version: str, limit: int) -> list[SampleRow]:
    where = "model_id = :m AND ts >= :a AND ts < :b" + (
        " AND model_version = :v" if version else ""
    )
    params: dict[str, Any] = {"m": span.model_id, "a": span.start, "b": span.end, "v": version}
    count = conn.execute(text(f"SELECT count(*) FROM predictions WHERE {where}"), params)
    params |= {"p": _share(int(count.scalar_one()), limit), "n": limit}
    rows = conn.execute(
        text(
            "SELECT num, cat, prediction, prediction_text FROM predictions "
            f"WHERE {where} AND random() < :p LIMIT :n"
        ),
        params,
    )
    return [tuple(r) for r in rows]
