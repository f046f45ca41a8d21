"""The drift job: a model's window against its active reference, per version and column.

Read: per active reference set, under its lock and in one transaction, the frozen profile (built
on first use), the rollups brought up to date incrementally (``monitor.storage.rollups``) and
summed over the window; for a small window, the raw numeric values instead. Compute: per column
with ``monitor.stats`` (``monitor.jobs.drift_columns``), then the verdicts. Write: ``Result``
rows (the runner upserts them).

``evaluate_drift`` returns the evaluation itself (verdicts, shares, evidence) for callers that
need more than the Result rows; ``run_drift`` is the scheduled ``Job``. See docs/drift.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import ValidationError
from sqlalchemy import Connection, text

from monitor.errors import ConfigError
from monitor.jobs.base import Window
from monitor.jobs.drift_columns import (
    ColumnDrift,
    categorical_from_counts,
    judge,
    numeric_from_rollups,
    numeric_from_samples,
)
from monitor.schemas import DriftSettings
from monitor.services import Services
from monitor.stats import verdict
from monitor.storage import rollups
from monitor.storage.colscan import DAY, RowSet, driver, numeric_groups
from monitor.storage.engine import translate_errors
from monitor.storage.models import ModelRecord
from monitor.storage.profiles import (
    ColumnProfile,
    Profile,
    build_profile,
    load_profile,
    reference_numbers,
    signature,
    store_profile,
)
from monitor.storage.results import Result
from monitor.storage.rollups import CategoryRollup, Columns, NumericRollup, Scope

EXACT_MAX_ROWS = 10_000
"""Windows with at most this many rows (per version) use the raw values: scipy's exact KS
p-value holds up to 10,000 rows, and reading that many values costs milliseconds."""
EXACT_MAX_REFERENCE = 50_000
"""... when the reference has at most this many rows too (it is read on every such run)."""
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


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


@dataclass
class _Current:
    """What the read phase hands to the statistics, for one version."""

    profile: Profile
    version: str
    columns: Columns
    samples: dict[int, FloatArray] | None  # exact path: current raw values per column
    reference: dict[int, FloatArray] | None  # exact path: reference raw values per column
    label: NumericRollup | CategoryRollup | FloatArray | None = None
    label_reference: FloatArray | None = None  # exact path: the reference's labels


def drift_settings(model: ModelRecord) -> DriftSettings:
    try:
        return DriftSettings.model_validate(model.config.get("drift") or {})
    except ValidationError as exc:
        raise ConfigError(f"model {model.name!r}: invalid drift settings: {exc}") from exc


def run_drift(services: Services, model: ModelRecord, window: Window) -> list[Result]:
    return to_results(evaluate_drift(services, model, window))


def evaluate_drift(
    services: Services, model: ModelRecord, window: Window, *, now: datetime | None = None
) -> DriftEvaluation:
    """Drift of ``model`` in ``window``, per version, against the active reference(s)."""
    settings = drift_settings(model)
    now = now or datetime.now(UTC)
    with translate_errors():
        current = _read(services, model, window, settings, now)
    versions = tuple(_version(c, settings) for c in current)
    return DriftEvaluation(model.name, window, tuple(v for v in versions if v is not None))


# --- read -------------------------------------------------------------------------------------


def _references(conn: Connection, model_id: int) -> list[tuple[int, str]]:
    """Active reference sets (id, version), dropping the profiles of inactive ones."""
    conn.execute(
        text(
            "DELETE FROM drift_profiles d USING reference_sets s WHERE s.id = d.reference_id "
            "AND d.model_id = :m AND NOT s.active"
        ),
        {"m": model_id},
    )
    rows = conn.execute(
        text("SELECT id, model_version FROM reference_sets WHERE model_id = :m AND active"),
        {"m": model_id},
    )
    return [(int(r[0]), str(r[1])) for r in rows]


def _scopes(model_id: int, references: Sequence[tuple[int, str]]) -> list[tuple[int, Scope]]:
    own = tuple(sorted(v for _, v in references if v))
    return [
        (ref_id, Scope(model_id, version or None, () if version else own))
        for ref_id, version in references
    ]


def _read(
    services: Services,
    model: ModelRecord,
    window: Window,
    settings: DriftSettings,
    now: datetime,
) -> list[_Current]:
    with services.engine.begin() as conn:
        scopes = _scopes(model.id, _references(conn, model.id))
    out: list[_Current] = []
    for reference_id, scope in scopes:
        with services.engine.begin() as conn:
            conn.execute(text("SET LOCAL work_mem = '64MB'"))
            rollups.lock(conn, reference_id)
            profile = _profile(conn, model, reference_id, settings)
            coverage = rollups.refresh(conn, profile, scope, window.start)
            cutoff = rollups.floor_to(
                now - timedelta(days=services.settings.retention_days + 1), DAY
            )
            rollups.prune(conn, reference_id, cutoff)
            plan = rollups.plan_window(window.start, window.end, now)
            per_version = rollups.window_rollups(conn, profile, scope, plan, coverage)
            for version, columns in sorted(per_version.items()):
                version_scope = Scope(model.id, version)
                current = _Current(profile, version, columns, None, None)
                if _rows(columns) == 0:
                    continue
                _samples(conn, current, version_scope, window, coverage)
                _labels(conn, current, version_scope, window, coverage)
                out.append(current)
    return out


def _profile(
    conn: Connection, model: ModelRecord, reference_id: int, settings: DriftSettings
) -> Profile:
    profile = load_profile(conn, reference_id)
    if profile is not None and profile.signature == signature(settings.psi_bins):
        return profile
    profile = build_profile(
        conn, reference_id, model.id, model.schema, model.prediction_kind, settings.psi_bins
    )
    store_profile(conn, profile)
    return profile


def _rows(columns: Columns) -> int:
    return max((c.n + c.n_missing for c in columns.values()), default=0)


def _window_rows(scope: Scope, window: Window, coverage: rollups.Coverage) -> RowSet:
    return RowSet(
        "predictions",
        f"{scope.where()} AND p.ts >= %(a)s AND p.ts < %(b)s AND p.received_at < %(mark)s",
        scope.params(a=window.start, b=window.end, mark=coverage.watermark),
    )


def _samples(
    conn: Connection,
    current: _Current,
    scope: Scope,
    window: Window,
    coverage: rollups.Coverage,
) -> None:
    """For a small window and reference: the raw numeric values of both."""
    profile = current.profile
    numeric = [c for c in profile.by_kind("numeric") if c.n > 0]
    too_big = _rows(current.columns) > EXACT_MAX_ROWS or profile.row_count > EXACT_MAX_REFERENCE
    if not numeric or too_big:
        return
    specs = [c.spec for c in numeric]
    parts = [m for _, m in numeric_groups(conn, _window_rows(scope, window, coverage), specs)]
    matrix = np.concatenate(parts) if parts else np.empty((0, len(specs)))
    reference = reference_numbers(conn, profile.reference_id, specs)
    current.samples = {s.col: matrix[:, j] for j, s in enumerate(specs)}
    current.reference = {s.col: reference[j] for j, s in enumerate(specs)}


def _labels(
    conn: Connection, current: _Current, scope: Scope, window: Window, coverage: rollups.Coverage
) -> None:
    """The window's delayed labels (by prediction timestamp), as counts, bins or raw values."""
    labels = current.profile.of_role("label")
    if not labels or labels[0].n == 0:
        return
    label = labels[0]
    join = (
        "FROM predictions p JOIN labels l ON l.model_id = p.model_id "
        "AND l.prediction_id = p.prediction_id "
        f"WHERE {_window_rows(scope, window, coverage).where}"
    )
    params = scope.params(a=window.start, b=window.end, mark=coverage.watermark)
    with driver(conn).cursor() as cur:
        if not label.numeric:
            cur.execute(
                f"SELECT l.label_text, count(*) {join} AND l.label_text IS NOT NULL GROUP BY 1",
                params,
            )
            counts = {str(k): int(v) for k, v in cur}
            current.label = CategoryRollup(0, counts) if counts else None
            return
        cur.execute(f"SELECT array_agg(l.label) {join} AND l.label IS NOT NULL", params)
        values = (cur.fetchone() or [None])[0]
        if not values:
            return
        array = np.asarray(values, dtype=np.float64)
        if array.size > EXACT_MAX_ROWS or current.profile.row_count > EXACT_MAX_REFERENCE:
            assert label.edges is not None
            current.label = NumericRollup.of(array, label.edges)
            return
        cur.execute(
            "SELECT array_agg(label) FROM reference_rows WHERE reference_id = %s "
            "AND label IS NOT NULL",
            (current.profile.reference_id,),
        )
        current.label = array
        current.label_reference = np.asarray((cur.fetchone() or [[]])[0] or [], np.float64)


# --- compute -----------------------------------------------------------------------------------


def _column(current: _Current, ref: ColumnProfile, settings: DriftSettings) -> ColumnDrift | None:
    col = ref.spec.col
    if current.samples is not None and current.reference is not None and col in current.samples:
        return numeric_from_samples(ref, current.reference[col], current.samples[col], settings)
    rollup = current.columns.get(col)
    if isinstance(rollup, NumericRollup):
        return numeric_from_rollups(ref, rollup, settings)
    if isinstance(rollup, CategoryRollup):
        return categorical_from_counts(ref, rollup, settings)
    return None


def _label(current: _Current, settings: DriftSettings) -> ColumnDrift | None:
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


def _version(current: _Current, settings: DriftSettings) -> VersionDrift | None:
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
        rows=_rows(current.columns),
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
        out.append(Result(v.model_version, window, "feature_drift_score", f.score, labels, details))
        if f.pvalue is not None:
            out.append(
                Result(v.model_version, window, "feature_drift_pvalue", f.pvalue, labels, details)
            )
        if f.detected is not None:
            out.append(
                Result(
                    v.model_version,
                    window,
                    "feature_drift_detected",
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
                    "feature_drift_score",
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
                "dataset_drift_share",
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
            ("prediction_drift_score", v.prediction),
            ("label_drift_score", v.label),
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
            Result(v.model_version, window, "window_samples", float(v.rows), {"metric": "drift"})
        )
        out.append(
            Result(
                v.model_version,
                window,
                "window_samples",
                float(v.reference_rows),
                {"metric": "reference"},
            )
        )
    return out
