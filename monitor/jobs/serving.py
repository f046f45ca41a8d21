"""Serving health per model version and variant: latency, throughput, errors, load time, and
every canary or shadow variant compared with production in the same window.

PostgreSQL computes the aggregates (``monitor.storage.serving``) and ``monitor.stats.serving``
compares each variant with production; the drift score runs the default method for the column
(``monitor.stats.selection``) on binned rollups: production's prediction deciles as bins for a
numeric output, counts per value otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import partial

import numpy as np
import numpy.typing as npt

from monitor.catalogue import (
    DEPLOYMENT_EVENT_TIMESTAMP_SECONDS,
    MODEL_LOAD_SECONDS,
    PREDICTION_ERROR_RATIO,
    PREDICTION_LATENCY_SECONDS,
    PREDICTIONS_PER_SECOND,
    SLO_OBJECTIVE,
    TIME_TO_FIRST_TOKEN_SECONDS,
    VARIANT_ERROR_RATIO_DELTA,
    VARIANT_LATENCY_P95_DELTA_SECONDS,
    VARIANT_PREDICTION_DRIFT_DETECTED,
    VARIANT_PREDICTION_DRIFT_SCORE,
    WINDOW_SAMPLES,
)
from monitor.jobs.base import ALL_VERSIONS, Window
from monitor.jobs.context import JobContext
from monitor.stats import selection
from monitor.stats.binned import Rollup, align_categories
from monitor.stats.selection import MethodChoice, Score
from monitor.stats.serving import (
    DEFAULT_QUANTILES,
    Traffic,
    compare_variants,
    error_ratio,
    prediction_drift,
    throughput,
)
from monitor.stats.verdict import guarded_verdict
from monitor.storage.database import Database
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.storage.serving import (
    DeploymentEvent,
    GroupStats,
    ModelLoad,
    binned_predictions,
    category_predictions,
    group_stats,
    latest_events,
    latest_loads,
    prediction_shape,
)
from monitor.storage.span import Span

PRODUCTION = "production"
DECILES = tuple(np.arange(1, selection.PSI_BINS) / selection.PSI_BINS)
TOP_CATEGORIES = 20
EVENTS_LOOKBACK = timedelta(days=7)
"""Deployment events older than this are not exported (the rollback alerts look back a day)."""

Key = tuple[str | None, str]  # (model_version or None for the pooled variant, variant)


def run_serving(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
    span = Span(model.id, window.start, window.end)
    groups = group_stats(ctx.db, span, DEFAULT_QUANTILES)
    loads = latest_loads(ctx.db, model.id, window.end)
    events = latest_events(ctx.db, model.id, window.end - EVENTS_LOOKBACK, window.end)
    production = _find(groups, (None, PRODUCTION))
    targets = [g for g in groups if g.model_version is not None and g.variant != PRODUCTION]
    drift = _prediction_drift(ctx.db, span, model, targets) if production and targets else {}
    served = [g for g in groups if g.model_version is not None]
    results = [r for g in served for r in _group_results(g, window)]
    results += _load_results(loads, served, window)
    results += _event_results(events, window)
    if served:
        results += _objectives(model, window)
    if production is not None:
        results += [r for g in targets for r in _comparison(g, production, drift, window)]
    return results


def _find(groups: Iterable[GroupStats], key: Key) -> GroupStats | None:
    return next((g for g in groups if (g.model_version, g.variant) == key), None)


def _group_results(g: GroupStats, window: Window) -> list[Result]:
    assert g.model_version is not None
    figure = partial(Result, g.model_version, window.name)
    labels = {"variant": g.variant}
    out = [
        figure(WINDOW_SAMPLES.result, float(g.total), {"metric": "serving", **labels}),
        figure(PREDICTIONS_PER_SECOND.result, throughput(g.total, window.seconds), labels),
        figure(PREDICTION_ERROR_RATIO.result, error_ratio(g.errors, g.total), labels),
    ]
    out += [
        figure(PREDICTION_LATENCY_SECONDS.result, ms / 1000.0, {**labels, "quantile": str(q)})
        for q, ms in g.latency_ms.items()
    ]
    out += [
        figure(TIME_TO_FIRST_TOKEN_SECONDS.result, ms / 1000.0, {**labels, "quantile": str(q)})
        for q, ms in g.ttft_ms.items()
    ]
    return out


def _objectives(model: ModelRecord, window: Window) -> list[Result]:
    """The model's SLO objectives, which the burn-rate rules measure its budgets against."""
    slo = model.options.slo
    return [
        Result(ALL_VERSIONS, window.name, SLO_OBJECTIVE.result, target, {"slo": name})
        for name, target in (
            ("availability", slo.availability_target),
            ("latency", slo.latency_target),
        )
    ]


def _load_results(
    loads: Sequence[ModelLoad], served: Sequence[GroupStats], window: Window
) -> list[Result]:
    """Last load time of each version and variant that served in the window or loaded in it."""
    serving = {(g.model_version, g.variant) for g in served}
    return [
        Result(
            load.model_version,
            window.name,
            MODEL_LOAD_SECONDS.result,
            load.load_seconds,
            {"variant": load.variant},
            {"loaded_at": load.ts.isoformat()},
        )
        for load in loads
        if load.ts >= window.start or (load.model_version, load.variant) in serving
    ]


def _event_results(events: Sequence[DeploymentEvent], window: Window) -> list[Result]:
    """When each version and variant was last deployed, rolled back and loaded: the rollback
    alerts compare these times (a rollback with no load after it)."""
    return [
        Result(
            e.model_version,
            window.name,
            DEPLOYMENT_EVENT_TIMESTAMP_SECONDS.result,
            e.ts.timestamp(),
            {"variant": e.variant, "event": e.kind},
        )
        for e in events
    ]


def _comparison(
    g: GroupStats,
    production: GroupStats,
    drift: dict[Key, tuple[Score, MethodChoice]],
    window: Window,
) -> list[Result]:
    """A canary or shadow group minus production (every production version pooled)."""
    assert g.model_version is not None
    figure = partial(Result, g.model_version, window.name)
    labels = {"variant": g.variant}
    compared = compare_variants(_traffic(production), _traffic(g))
    out = [figure(VARIANT_ERROR_RATIO_DELTA.result, compared.error_ratio_diff, labels)]
    if compared.p95_latency_diff is not None:
        p95 = compared.p95_latency_diff / 1000.0
        out.append(figure(VARIANT_LATENCY_P95_DELTA_SECONDS.result, p95, labels))
    found = drift.get((g.model_version, g.variant))
    if found is not None:
        score, choice = found
        details = {
            "pvalue": score.pvalue,
            "threshold": choice.threshold,
            "production_samples": production.total,
            "variant_samples": g.total,
        }
        out.append(
            figure(
                VARIANT_PREDICTION_DRIFT_SCORE.result,
                score.statistic,
                {**labels, "method": choice.method},
                details,
            )
        )
        verdict = guarded_verdict(
            score.decisive(choice.kind), choice, n_ref=production.total, n_cur=g.total
        )
        if verdict is not None:
            out.append(
                figure(
                    VARIANT_PREDICTION_DRIFT_DETECTED.result,
                    float(verdict),
                    {**labels, "method": choice.method},
                    details,
                )
            )
    return out


def _traffic(g: GroupStats) -> Traffic:
    return Traffic(g.total, g.errors, g.latency_ms)


def _prediction_drift(
    db: Database, span: Span, model: ModelRecord, targets: Sequence[GroupStats]
) -> dict[Key, tuple[Score, MethodChoice]]:
    """Drift of each target group's predictions, production pooled over versions as reference."""
    shape = prediction_shape(db, span, DECILES)
    numeric = shape.numeric if model.prediction_kind is None else model.prediction_kind == "numeric"
    keys = [(g.model_version, g.variant) for g in targets]
    if numeric and shape.n_unique > selection.FEW_UNIQUE and shape.production_quantiles.size:
        pairs = _numeric_pairs(db, span, np.unique(shape.production_quantiles), keys)
    else:
        pairs = _category_pairs(db, span, keys)
    out: dict[Key, tuple[Score, MethodChoice]] = {}
    for key, (ref, cur) in pairs.items():
        found = prediction_drift(ref, cur, numeric=numeric, n_unique=shape.n_unique)
        if found is not None:
            out[key] = found
    return out


def _numeric_pairs(
    db: Database, span: Span, edges: npt.NDArray[np.float64], keys: Sequence[Key]
) -> dict[Key, tuple[Rollup, Rollup]]:
    rollups = {
        (b.model_version, b.variant): Rollup(b.counts, b.sums, b.sumsq)
        for b in binned_predictions(db, span, edges)
    }
    ref = rollups.get((None, PRODUCTION))
    return {k: (ref, rollups[k]) for k in keys if ref is not None and k in rollups}


def _category_pairs(
    db: Database, span: Span, keys: Sequence[Key]
) -> dict[Key, tuple[Rollup, Rollup]]:
    counts = {
        (c.model_version, c.variant): c.counts
        for c in category_predictions(db, span, TOP_CATEGORIES)
    }
    ref = counts.get((None, PRODUCTION))
    pairs: dict[Key, tuple[Rollup, Rollup]] = {}
    for k in keys:
        if ref is not None and k in counts:
            _, ref_rollup, cur_rollup = align_categories(ref, counts[k])
            pairs[k] = ref_rollup, cur_rollup
    return pairs
