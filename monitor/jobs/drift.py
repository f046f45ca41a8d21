"""The drift job: a model's window against its active reference, per version and column.

Read: per active reference set, under its lock and in one transaction, the frozen profile (built
on first use), the rollups brought up to date incrementally (``monitor.storage.drift.rollups``) and
summed over the window; for a small window, the raw numeric values instead. Compute: per column
with ``monitor.stats`` (``monitor.jobs.drift_columns``), then the verdicts. Write: ``Result``
rows (the runner upserts them).

``evaluate_drift`` returns the evaluation itself (verdicts, shares, evidence) for callers that
need more than the Result rows; ``run_drift`` is the scheduled ``Job``. See docs/drift.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.catalogue import (
    DATASET_DRIFT_SHARE,
    FEATURE_DRIFT_DETECTED,
    FEATURE_DRIFT_PVALUE,
    FEATURE_DRIFT_SCORE,
    LABEL_DRIFT_SCORE,
    PREDICTION_DRIFT_SCORE,
    WINDOW_SAMPLES,
)
from monitor.jobs.base import Window
from monitor.jobs.context import JobContext
from monitor.jobs.drift_columns import (
    ColumnDrift,
    categorical_from_counts,
    judge,
    numeric_from_rollups,
    numeric_from_samples,
)
from monitor.schemas import DriftSettings
from monitor.stats import verdict
from monitor.storage.drift import window as drift_window
from monitor.storage.drift.bins import CategoryRollup, NumericRollup
from monitor.storage.drift.profiles import ColumnProfile
from monitor.storage.drift.window import CurrentWindow, rows_of
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.storage.span import Span


@dataclass(frozen=True)
class VersionDrift:
    """One model version's drift in a window."""

    model_version: str
    reference_id: int
    reference_rows: int
    rows: int
    features: tuple[ColumnDrift, ...]
    prediction: ColumnDrift | None
    label: ColumnDrift | None
    drift_share: float | None
    dataset_drift: bool | None
    share_threshold: float

    @property
    def drifted(self) -> list[ColumnDrift]:
        return [f for f in self.features if f.detected]


@dataclass(frozen=True)
class DriftEvaluation:
    model: str
    window: Window
    versions: tuple[VersionDrift, ...]


def run_drift(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
    return to_results(evaluate_drift(ctx, model, window))


def evaluate_drift(
    ctx: JobContext, model: ModelRecord, window: Window, *, now: datetime | None = None
) -> DriftEvaluation:
    """Drift of ``model`` in ``window``, per version, against the active reference(s)."""
    settings = model.options.drift
    current = read_windows(ctx, model, window, settings, now or ctx.clock())
    versions = tuple(_version(c, settings) for c in current)
    return DriftEvaluation(model.name, window, tuple(v for v in versions if v is not None))


def read_windows(
    ctx: JobContext,
    model: ModelRecord,
    window: Window,
    settings: DriftSettings,
    now: datetime,
    *,
    samples: bool = True,
) -> list[CurrentWindow]:
    """The window's current data per active reference and version (``storage.drift.window``)."""
    return drift_window.read_windows(
        ctx.db,
        model,
        Span(model.id, window.start, window.end),
        psi_bins=settings.psi_bins,
        retention_days=ctx.settings.retention_days,
        now=now,
        samples=samples,
    )


def ensure_profiles(ctx: JobContext, model: ModelRecord) -> list[int]:
    """Build the profiles of the model's active references now, not at the next run."""
    return drift_window.ensure_profiles(ctx.db, model, model.options.drift.psi_bins)


# --- compute -----------------------------------------------------------------------------------


def _column(
    current: CurrentWindow, ref: ColumnProfile, settings: DriftSettings
) -> ColumnDrift | None:
    col = ref.spec.col
    if current.samples is not None and current.reference is not None and col in current.samples:
        return numeric_from_samples(ref, current.reference[col], current.samples[col], settings)
    rollup = current.columns.get(col)
    if isinstance(rollup, NumericRollup):
        return numeric_from_rollups(ref, rollup, settings)
    if isinstance(rollup, CategoryRollup):
        return categorical_from_counts(ref, rollup, settings)
    return None


def _label(current: CurrentWindow, settings: DriftSettings) -> ColumnDrift | None:
    labels = current.profile.of_role("label")
    if current.label is None or not labels:
        return None
    ref = labels[0]
    if isinstance(current.label, NumericRollup):
        return numeric_from_rollups(ref, current.label, settings)
    if isinstance(current.label, CategoryRollup):
        return categorical_from_counts(ref, current.label, settings)
    assert current.label_reference is not None
    return numeric_from_samples(ref, current.label_reference, current.label, settings)


def _version(current: CurrentWindow, settings: DriftSettings) -> VersionDrift | None:
    profile = current.profile
    features = [
        d
        for ref in profile.of_role("feature")
        if (d := _column(current, ref, settings)) is not None
    ]
    judged = judge(features, settings)
    predictions = profile.of_role("prediction")
    prediction = _column(current, predictions[0], settings) if predictions else None
    label = _label(current, settings)
    share = verdict.drift_share(f.detected for f in judged)
    return VersionDrift(
        model_version=current.version,
        reference_id=profile.reference_id,
        reference_rows=profile.row_count,
        rows=rows_of(current.columns),
        features=tuple(judged),
        prediction=prediction.judged(settings.min_samples) if prediction else None,
        label=label.judged(settings.min_samples) if label else None,
        drift_share=share,
        dataset_drift=verdict.dataset_drift(share, settings.dataset_drift_share),
        share_threshold=settings.dataset_drift_share,
    )


# --- write -------------------------------------------------------------------------------------


def evidence(column: ColumnDrift) -> dict[str, Any]:
    """What the API, the webhook and the Result details say about a column."""
    return {
        "method": column.method,
        "score": column.score,
        "pvalue": column.pvalue,
        "adjusted_pvalue": column.adjusted_pvalue,
        "threshold": column.threshold,
        "detected": column.detected,
        "n_ref": column.n_ref,
        "n_cur": column.n_cur,
        "psi": column.psi,
        "kind": column.kind,
        "path": column.path,
        "error_bound": column.error_bound,
    }


def _feature_results(v: VersionDrift, window: str) -> list[Result]:
    out: list[Result] = []
    for f in v.features:
        labels = {"feature": f.name, "method": f.method}
        details = evidence(f)
        out.append(
            Result(v.model_version, window, FEATURE_DRIFT_SCORE.result, f.score, labels, details)
        )
        if f.pvalue is not None:
            out.append(
                Result(
                    v.model_version, window, FEATURE_DRIFT_PVALUE.result, f.pvalue, labels, details
                )
            )
        if f.detected is not None:
            out.append(
                Result(
                    v.model_version,
                    window,
                    FEATURE_DRIFT_DETECTED.result,
                    float(f.detected),
                    labels,
                    details,
                )
            )
        if f.psi is not None and f.method != "psi":
            out.append(
                Result(
                    v.model_version,
                    window,
                    FEATURE_DRIFT_SCORE.result,
                    f.psi,
                    {"feature": f.name, "method": "psi"},
                    {"kind": f.kind, "n_ref": f.n_ref, "n_cur": f.n_cur, "path": f.path},
                )
            )
    return out


def to_results(evaluation: DriftEvaluation) -> list[Result]:
    window = evaluation.window.name
    out: list[Result] = []
    for v in evaluation.versions:
        out += _feature_results(v, window)
        decided = [f for f in v.features if f.detected is not None]
        out.append(
            Result(
                v.model_version,
                window,
                DATASET_DRIFT_SHARE.result,
                v.drift_share,
                {},
                {
                    "dataset_drift": v.dataset_drift,
                    "threshold": v.share_threshold,
                    "drifted": [f.name for f in v.drifted],
                    "features": len(decided),
                },
            )
        )
        for metric, column in (
            (PREDICTION_DRIFT_SCORE.result, v.prediction),
            (LABEL_DRIFT_SCORE.result, v.label),
        ):
            if column is not None:
                out.append(
                    Result(
                        v.model_version,
                        window,
                        metric,
                        column.score,
                        {"method": column.method},
                        evidence(column),
                    )
                )
        out.append(
            Result(
                v.model_version, window, WINDOW_SAMPLES.result, float(v.rows), {"metric": "drift"}
            )
        )
        out.append(
            Result(
                v.model_version,
                window,
                WINDOW_SAMPLES.result,
                float(v.reference_rows),
                {"metric": "reference"},
            )
        )
    return out
