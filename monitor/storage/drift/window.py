"""The window a drift or quality run reads: per active reference, the current data on its bins.

Per active reference set, under its lock and in one transaction: the frozen profile (built on
first use), the rollups brought up to date incrementally (``monitor.storage.drift.rollups``) and
summed over the window; for a small window and reference, the raw numeric values as well; and
the delayed labels of the window's predictions. Everything read is consistent with one rollup
watermark: a row counts once it is below it, in the rollups and in the raw reads alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from monitor.storage.database import Database
from monitor.storage.drift import rollups
from monitor.storage.drift.bins import CategoryRollup, Columns, NumericRollup
from monitor.storage.drift.colscan import DAY, RowSet, driver, numeric_groups
from monitor.storage.drift.profile_build import build_profile, reference_numbers
from monitor.storage.drift.profiles import Profile, load_profile, signature, store_profile
from monitor.storage.models import ModelRecord
from monitor.storage.span import Scope, Span

EXACT_MAX_ROWS = 10_000
"""Windows with at most this many rows (per version) use the raw values: scipy's exact KS
p-value holds up to 10,000 rows, and reading that many values costs milliseconds."""
EXACT_MAX_REFERENCE = 50_000
"""... when the reference has at most this many rows too (it is read on every such run)."""
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass
class CurrentWindow:
    """What the read phase hands to the statistics, for one version."""

    profile: Profile
    version: str
    columns: Columns
    samples: dict[int, FloatArray] | None  # exact path: current raw values per column
    reference: dict[int, FloatArray] | None  # exact path: reference raw values per column
    label: NumericRollup | CategoryRollup | FloatArray | None = None
    label_reference: FloatArray | None = None  # exact path: the reference's labels


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


def read_windows(
    db: Database,
    model: ModelRecord,
    span: Span,
    *,
    psi_bins: int,
    retention_days: int,
    now: datetime,
    samples: bool = True,
) -> list[CurrentWindow]:
    """Per active reference and model version with rows in ``span``, its current data.

    ``samples=False`` skips the raw values and the labels (the quality job needs neither).
    """
    with db.begin() as conn:
        scopes = _scopes(model.id, _references(conn, model.id))
    out: list[CurrentWindow] = []
    retention = timedelta(days=retention_days + 1)
    for reference_id, scope in scopes:
        with db.begin() as conn:
            conn.execute(text("SET LOCAL work_mem = '64MB'"))
            rollups.lock(conn, reference_id)
            profile = _profile(conn, model, reference_id, psi_bins)
            coverage = rollups.refresh(conn, profile, scope, span.start)
            rollups.prune(conn, reference_id, rollups.floor_to(now - retention, DAY))
            plan = rollups.plan_window(span.start, span.end, now)
            per_version = rollups.window_rollups(conn, profile, scope, plan, coverage)
            for version, columns in sorted(per_version.items()):
                if rows_of(columns) == 0 or version in scope.excluded:
                    continue  # (a version that got its own reference since these rows came)
                current = CurrentWindow(profile, version, columns, None, None)
                if samples:
                    rows = _window_rows(Scope(model.id, version), span, coverage)
                    _samples(conn, current, rows)
                    _labels(conn, current, rows)
                out.append(current)
    return out


def ensure_profiles(db: Database, model: ModelRecord, psi_bins: int) -> list[int]:
    """Build (if missing) the profiles of the model's active reference sets, now.

    The drift job does this on first use; calling it right after a reference becomes active
    moves that one-off cost out of the next scheduled run. Returns the reference ids.
    """
    with db.begin() as conn:
        scopes = _scopes(model.id, _references(conn, model.id))
    for reference_id, _scope in scopes:
        with db.begin() as conn:
            rollups.lock(conn, reference_id)
            _profile(conn, model, reference_id, psi_bins)
    return [reference_id for reference_id, _ in scopes]


def _profile(conn: Connection, model: ModelRecord, reference_id: int, psi_bins: int) -> Profile:
    profile = load_profile(conn, reference_id)
    if profile is not None and profile.signature == signature(psi_bins):
        return profile
    profile = build_profile(
        conn.engine, reference_id, model.id, model.schema, model.prediction_kind, psi_bins
    )
    store_profile(conn, profile)
    return profile


def rows_of(columns: Columns) -> int:
    return max((c.n + c.n_missing for c in columns.values()), default=0)


def _window_rows(scope: Scope, span: Span, coverage: rollups.Coverage) -> RowSet:
    return RowSet.predictions(
        scope, ts_from=span.start, ts_to=span.end, received_before=coverage.watermark
    )


def _samples(conn: Connection, current: CurrentWindow, rows: RowSet) -> None:
    """For a small window and reference: the raw numeric values of both."""
    profile = current.profile
    numeric = [c for c in profile.by_kind("numeric") if c.n > 0]
    too_big = rows_of(current.columns) > EXACT_MAX_ROWS or profile.row_count > EXACT_MAX_REFERENCE
    if not numeric or too_big:
        return
    specs = [c.spec for c in numeric]
    parts = [m for _, m in numeric_groups(conn, rows, specs)]
    matrix = np.concatenate(parts) if parts else np.empty((0, len(specs)))
    reference = reference_numbers(conn, profile.reference_id, specs)
    current.samples = {s.col: matrix[:, j] for j, s in enumerate(specs)}
    current.reference = {s.col: reference[j] for j, s in enumerate(specs)}


def _labels(conn: Connection, current: CurrentWindow, rows: RowSet) -> None:
    """The window's delayed labels (by prediction timestamp), as counts, bins or raw values."""
    labels = current.profile.of_role("label")
    if not labels or labels[0].n == 0:
        return
    label = labels[0]
    join = (
        "FROM predictions p JOIN labels l ON l.model_id = p.model_id "
        "AND l.prediction_id = p.prediction_id "
        f"WHERE {rows.where}"
    )
    params = rows.params
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
