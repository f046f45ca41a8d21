"""Predictions of a window joined to their delayed labels, and the window's usage totals."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from sqlalchemy import text

from monitor.storage.database import Database
from monitor.storage.span import Span


@dataclass(frozen=True)
class Labelled:
    """One model version's labelled predictions in a window, as parallel arrays (NaN / None
    where a row has no numeric or text value)."""

    model_version: str
    prediction: npt.NDArray[np.float64]
    prediction_text: list[str | None]
    label: npt.NDArray[np.float64]
    label_text: list[str | None]
    probabilities: list[dict[str, float] | None] = field(default_factory=list)
    """Each row's score per class, where the model logged them."""

    @property
    def size(self) -> int:
        return int(self.prediction.size)


def labelled_predictions(db: Database, span: Span) -> list[Labelled]:
    """Predictions in the window that have a label, per model version (the window is the
    prediction's timestamp, not the label's)."""
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.model_version, array_agg(p.prediction), array_agg(p.prediction_text), "
                "array_agg(l.label), array_agg(l.label_text), array_agg(p.probabilities) "
                "FROM predictions p JOIN labels l "
                "ON l.model_id = p.model_id AND l.prediction_id = p.prediction_id "
                "WHERE p.model_id = :model_id AND p.ts >= :start AND p.ts < :end "
                "AND p.prediction_id IS NOT NULL GROUP BY p.model_version ORDER BY 1"
            ),
            span.params(),
        )
        return [
            Labelled(
                version,
                _floats(pred),
                list(pred_text),
                _floats(label),
                list(label_text),
                list(scores),
            )
            for version, pred, pred_text, label, label_text, scores in rows
        ]


def _floats(values: list[float | None]) -> npt.NDArray[np.float64]:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


@dataclass(frozen=True)
class UsageTotals:
    predictions: int
    gpu_seconds: float | None  # None when no prediction reported gpu_seconds
    tokens_in: float
    tokens_out: float


def usage_totals(db: Database, span: Span) -> UsageTotals:
    """Every version pooled: what the model's deployment served and consumed in the window."""
    with db.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*), sum(gpu_seconds), coalesce(sum(tokens_in), 0), "
                "coalesce(sum(tokens_out), 0) FROM predictions "
                "WHERE model_id = :model_id AND ts >= :start AND ts < :end"
            ),
            span.params(),
        ).one()
        n, gpu, tokens_in, tokens_out = row
        return UsageTotals(
            int(n), None if gpu is None else float(gpu), float(tokens_in), float(tokens_out)
        )
