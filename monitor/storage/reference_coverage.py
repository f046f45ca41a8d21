"""What a model's active references hold: enough to say why a drift figure is missing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, text

from monitor.storage.database import Database


@dataclass(frozen=True)
class ReferenceCoverage:
    """One active reference set; ``model_version`` '' is the one for every version."""

    model_version: str
    rows: int
    has_predictions: bool
    has_labels: bool


_SQL = text(
    "SELECT s.model_version, coalesce(s.row_count, 0), "
    "EXISTS (SELECT 1 FROM reference_rows r WHERE r.reference_id = s.id "
    "AND (r.prediction IS NOT NULL OR r.prediction_text IS NOT NULL)), "
    "EXISTS (SELECT 1 FROM reference_rows r WHERE r.reference_id = s.id "
    "AND (r.label IS NOT NULL OR r.label_text IS NOT NULL)) "
    "FROM reference_sets s WHERE s.model_id = :m AND s.active ORDER BY s.model_version"
)


def active_references(conn: Connection, model_id: int) -> list[ReferenceCoverage]:
    return [ReferenceCoverage(*row) for row in conn.execute(_SQL, {"m": model_id})]


def coverage_of(db: Database, model_ids: Sequence[int]) -> dict[int, list[ReferenceCoverage]]:
    """The active references of each model, read on one connection."""
    with db.connect() as conn:
        return {m: active_references(conn, m) for m in model_ids}
