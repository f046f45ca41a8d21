"""The data-quality job: missing values, out-of-range values, new categories, unknown features.

With an active reference, every figure comes from the drift rollups (``storage.drift.window``): a
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

from monitor.catalogue import (
    FEATURE_MISSING_RATIO,
    FEATURE_NEW_CATEGORY_RATIO,
    FEATURE_OUT_OF_RANGE_RATIO,
    SCHEMA_VIOLATIONS,
    WINDOW_SAMPLES,
)
from monitor.jobs.base import Window
from monitor.jobs.context import JobContext
from monitor.jobs.drift import read_windows
from monitor.storage.drift.bins import CategoryRollup, NumericRollup, schema_rollup
from monitor.storage.drift.presence import feature_presence
from monitor.storage.drift.profiles import ColumnProfile
from monitor.storage.drift.window import CurrentWindow, rows_of
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.storage.span import Span


def run_quality(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
    settings = model.options.drift
    current = read_windows(ctx, model, window, settings, ctx.clock(), samples=False)
    if current:
        return [r for c in current for r in _from_rollups(c, window.name)]
    return _without_reference(ctx, model, window)


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


def _without_reference(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
    """Missing ratios and schema violations from one scan of the window's rows."""
    span = Span(model.id, window.start, window.end)
    out: list[Result] = []
    for group in feature_presence(ctx.db, span, model.schema):
        total = group.rows
        for name, n in group.present.items():
            out.append(
                Result(
                    group.version,
                    window.name,
                    FEATURE_MISSING_RATIO.result,
                    (total - n) / total,
                    {"feature": name},
                    {"rows": total},
                )
            )
        rollup = schema_rollup(total, group.unknown[None], group.unknown)
        out += _schema_results(rollup, group.version, window.name)
        out.append(
            Result(
                group.version,
                window.name,
                WINDOW_SAMPLES.result,
                float(total),
                {"metric": "quality"},
            )
        )
    return out
