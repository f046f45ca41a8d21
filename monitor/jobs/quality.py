"""The data-quality job: missing values, out-of-range values, new categories, unknown features.

With an active reference, every figure comes from the drift rollups (``drift_window``): a
numeric value is out of range when it falls in the open bin below the reference minimum or the
one above the maximum; a category is new when the reference profile does not name it (with more
than ``profiles.MAX_CATEGORIES`` reference categories, a rare old one may count as new).
Without a reference, the missing ratios and schema violations are counted directly in the
window's rows (one scan); range and categories need a reference.

Unknown features (stored in ``predictions.extra->'unknown_features'``) are schema violations:
``schema_violations{feature=<name>}`` counts the rows that carried each, and
``schema_violations`` without a feature label the rows that carried any.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import Connection

from monitor.catalogue import (
    FEATURE_MISSING_RATIO,
    FEATURE_NEW_CATEGORY_RATIO,
    FEATURE_OUT_OF_RANGE_RATIO,
    SCHEMA_VIOLATIONS,
    WINDOW_SAMPLES,
)
from monitor.jobs.base import Window
from monitor.jobs.drift import drift_settings
from monitor.jobs.drift_window import CurrentWindow, read_windows, rows_of
from monitor.services import Services
from monitor.storage.drift.bins import CategoryRollup, NumericRollup, schema_rollup
from monitor.storage.drift.colscan import RowSet, driver, unknown_feature_counts
from monitor.storage.drift.profiles import ColumnProfile
from monitor.storage.engine import translate_errors
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result


def run_quality(services: Services, model: ModelRecord, window: Window) -> list[Result]:
    settings = drift_settings(model)
    with translate_errors():
        current = read_windows(services, model, window, settings, datetime.now(UTC), samples=False)
        if current:
            return [r for c in current for r in _from_rollups(c, window.name)]
        with services.engine.connect() as conn:
            return _without_reference(conn, model, window)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _column_results(
    ref: ColumnProfile, rollup: NumericRollup | CategoryRollup, version: str, window: str
) -> list[Result]:
    labels = {"feature": ref.name}
    total, present = rollup.n + rollup.n_missing, rollup.n
    out = [
        Result(
            version,
            window,
            FEATURE_MISSING_RATIO.result,
            _ratio(rollup.n_missing, total),
            labels,
            {"rows": total},
        )
    ]
    if isinstance(rollup, NumericRollup) and ref.n > 0 and present:
        outside = int(rollup.counts[0] + rollup.counts[-1])
        out.append(
            Result(
                version,
                window,
                FEATURE_OUT_OF_RANGE_RATIO.result,
                outside / present,
                labels,
                {"values": present, "min": ref.min, "max": ref.max},
            )
        )
    if isinstance(rollup, CategoryRollup) and ref.n > 0 and present:
        known = set(ref.categories)
        new = {k: v for k, v in rollup.counts.items() if k not in known}
        top = [k for k, _ in Counter(new).most_common(10)]
        out.append(
            Result(
                version,
                window,
                FEATURE_NEW_CATEGORY_RATIO.result,
                sum(new.values()) / present,
                labels,
                {"values": present, "new_categories": top},
            )
        )
    return out


def _schema_results(rollup: CategoryRollup, version: str, window: str) -> list[Result]:
    out = [
        Result(version, window, SCHEMA_VIOLATIONS.result, float(n), {"feature": name})
        for name, n in sorted(rollup.counts.items())
    ]
    out.append(
        Result(
            version,
            window,
            SCHEMA_VIOLATIONS.result,
            float(rollup.n),
            details={"rows": rollup.n + rollup.n_missing},
        )
    )
    return out


def _from_rollups(current: CurrentWindow, window: str) -> list[Result]:
    out: list[Result] = []
    version = current.version
    for ref in current.profile.columns:
        rollup = current.columns.get(ref.spec.col)
        if rollup is None:
            continue
        if ref.spec.role == "feature":
            out += _column_results(ref, rollup, version, window)
        elif ref.spec.role == "schema" and isinstance(rollup, CategoryRollup):
            out += _schema_results(rollup, version, window)
    rows = float(rows_of(current.columns))
    out.append(Result(version, window, WINDOW_SAMPLES.result, rows, {"metric": "quality"}))
    return out


def _without_reference(conn: Connection, model: ModelRecord, window: Window) -> list[Result]:
    """Missing ratios and schema violations from one scan of the window's rows."""
    schema = model.schema
    numeric, categorical = schema.numeric_names, schema.categorical_names
    counts = [f"count(p.num[{i + 1}])" for i in range(len(numeric))]
    counts += [f"count(p.cat[{i + 1}])" for i in range(len(categorical))]
    where = "p.model_id = %(model_id)s AND p.ts >= %(a)s AND p.ts < %(b)s"
    params = {"model_id": model.id, "a": window.start, "b": window.end}
    with driver(conn).cursor() as cur:
        cur.execute(
            f"SELECT p.model_version, count(*) {''.join(', ' + c for c in counts)} "
            f"FROM predictions p WHERE {where} GROUP BY 1",
            params,
        )
        groups = cur.fetchall()
    unknown: dict[str, Counter[str | None]] = {}
    for (version, _hour), names in unknown_feature_counts(
        conn, RowSet("predictions", where, params)
    ).items():
        unknown.setdefault(version, Counter()).update(names)
    out: list[Result] = []
    for version, total, *present in groups:
        for name, n in zip([*numeric, *categorical], present, strict=True):
            out.append(
                Result(
                    version,
                    window.name,
                    FEATURE_MISSING_RATIO.result,
                    (total - n) / total,
                    {"feature": name},
                    {"rows": total},
                )
            )
        names = unknown.get(version, Counter())
        rollup = schema_rollup(total, names[None], names)
        out += _schema_results(rollup, version, window.name)
        out.append(
            Result(version, window.name, WINDOW_SAMPLES.result, float(total), {"metric": "quality"})
        )
    return out
