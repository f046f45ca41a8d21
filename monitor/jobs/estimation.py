"""Estimated performance without labels: per active reference, fit once, estimate per window.

For each active reference set the estimator (``monitor.jobs.estimators``: CBPE for classifiers
that log their score of every class, ``probabilities``, binary or multiclass; else CBPE for
binary classifiers whose prediction is the positive-class score; DLE for regressors) is fitted
on a uniform sample of the reference's labelled rows and kept in memory for as long as that
reference set is the active one (``_fitted``: keyed by its id and creation time, at most
``FIT_CACHE`` of them), so a tick only scores the window. Per model version with rows in the
window it writes, on a uniform sample of ``performance.sample_rows`` rows (default 50,000):

- ``ml_estimated_performance{metric}`` with ``_lower`` / ``_upper``, the band the realized
  figure can be in at this window size (3 sd), and ``ml_window_samples{metric=
  "estimated_performance"}`` (the window's rows);
- where some of the sampled rows have their labels already, ``ml_estimated_performance_error``:
  realized minus estimated on those same rows, the estimator's own error;
- with ``segments`` configured, the same estimate and band per segment
  (``ml_segment_estimated_performance``, ``monitor.jobs.estimation_segments``);
- the model's ``performance.min`` / ``performance.max`` as ``ml_performance_floor`` /
  ``ml_performance_ceiling``, which ``MLEstimatedPerformanceDrop`` compares the band with.

scikit-learn runs on one thread (threadpoolctl): the job shares the scheduler's cores with
ingest and the other jobs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from threadpoolctl import threadpool_limits

from monitor.catalogue import (
    ESTIMATED_PERFORMANCE,
    ESTIMATED_PERFORMANCE_ERROR,
    ESTIMATED_PERFORMANCE_LOWER,
    ESTIMATED_PERFORMANCE_UPPER,
    PERFORMANCE_CEILING,
    PERFORMANCE_FLOOR,
    WINDOW_SAMPLES,
)
from monitor.ingest.rules import MAX_CLASSES
from monitor.ingest.schema import FeatureSchema
from monitor.jobs.base import ALL_VERSIONS, Window
from monitor.jobs.context import JobContext
from monitor.jobs.estimation_segments import segment_results
from monitor.jobs.estimators import Estimator, PositiveClass, fit_binary, fit_regression
from monitor.jobs.memo import version_counts
from monitor.jobs.multiclass import ClassNames, fit_multiclass
from monitor.jobs.performance import DEFAULT_POSITIVE, _positive
from monitor.schemas import PerformanceSettings
from monitor.stats.estimation import estimate_errors
from monitor.storage.database import Database
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.storage.rowsample import (
    ActiveReference,
    RowSample,
    active_references,
    hash_codes,
    reference_classes,
    reference_sample,
    window_samples,
)
from monitor.storage.span import Span

FIT_CACHE = 32
"""Fitted references kept in memory (a few hundred KiB each)."""
MIN_WINDOW_ROWS = 20
"""Scored rows below which a window gets no estimate (its band would span the whole range)."""
MIN_LABELLED_ROWS = 20
"""Labelled sampled rows below which the estimate's error is not recorded."""
SAMPLES_LABEL = ESTIMATED_PERFORMANCE.result


@dataclass(frozen=True)
class FitKey:
    """Everything a fitted estimator depends on besides the reference set itself."""

    task: str
    schema: FeatureSchema
    positive: PositiveClass
    positive_name: str | None
    """``positive_class`` as configured (None: macro-averaged over a multiclass model's classes)."""
    sample_rows: int


def run_estimation(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
    settings = model.options.performance
    out = _bounds(settings, window)
    if model.task not in ("classification", "regression") or not settings.estimate:
        return out
    key = FitKey(
        model.task,
        model.schema,
        _positive_class(ctx.db, model),
        _positive(model.options.positive_class),
        settings.sample_rows,
    )
    span = Span(model.id, window.start, window.end)
    for reference in active_references(ctx.db, model.id):
        estimator = _fitted(ctx.db, reference, key)
        if estimator is None:
            continue
        samples = window_samples(
            ctx.db,
            reference.scope,
            span,
            model.schema,
            key.sample_rows,
            estimator.score_classes,
            counts=version_counts(ctx.memo, ctx.db, span),
        )
        for version, sample in samples.items():
            out += version_results(estimator, version, window.name, sample)
            if model.options.segments:
                min_rows = max(MIN_WINDOW_ROWS, model.options.drift.min_samples)
                with threadpool_limits(limits=1):
                    out += segment_results(
                        ctx.db, model, estimator, span, version, window.name, sample, min_rows
                    )
    return out


def _positive_class(db: Database, model: ModelRecord) -> PositiveClass:
    text = _positive(model.options.positive_class) or DEFAULT_POSITIVE
    try:
        number: float | None = float(text)
    except ValueError:
        number = None
    return PositiveClass(number, float(hash_codes(db, [text])[0]))


def _bounds(settings: PerformanceSettings, window: Window) -> list[Result]:
    floors = [
        Result(ALL_VERSIONS, window.name, PERFORMANCE_FLOOR.result, v, {"metric": k})
        for k, v in sorted(settings.min.items())
    ]
    ceilings = [
        Result(ALL_VERSIONS, window.name, PERFORMANCE_CEILING.result, v, {"metric": k})
        for k, v in sorted(settings.max.items())
    ]
    return floors + ceilings


@functools.lru_cache(maxsize=FIT_CACHE)
def _fitted(db: Database, reference: ActiveReference, key: FitKey) -> Estimator | None:
    """The reference's estimator, fitted once per (database, reference set, settings)."""
    if key.task == "classification":
        names = reference_classes(db, reference, MAX_CLASSES)
        if names:
            classes = ClassNames.of(names, hash_codes(db, names))
            sample = reference_sample(db, reference, key.schema, key.sample_rows, names)
            with threadpool_limits(limits=1):
                return fit_multiclass(sample, classes, key.positive_name)
    sample = reference_sample(db, reference, key.schema, key.sample_rows)
    with threadpool_limits(limits=1):
        if key.task == "regression":
            return fit_regression(sample)
        return fit_binary(sample, key.positive)


def version_results(
    estimator: Estimator, version: str, window: str, sample: RowSample
) -> list[Result]:
    """One version's estimate, band, window size and (with labels) the estimate's error."""
    usable = estimator.usable(sample)
    if int(usable.sum()) < MIN_WINDOW_ROWS:
        return []
    with threadpool_limits(limits=1):
        estimates = estimator.estimate(sample)
        errors = _errors(estimator, sample)
    details = {"method": estimator.method, "sampled": int(usable.sum())}
    out: list[Result] = []
    for name, e in estimates.items():
        labels = {"metric": name}
        out += [
            Result(
                version,
                window,
                ESTIMATED_PERFORMANCE.result,
                e.value,
                labels,
                {**details, "std": e.std, "rows": sample.population},
            ),
            Result(version, window, ESTIMATED_PERFORMANCE_LOWER.result, e.lower, labels),
            Result(version, window, ESTIMATED_PERFORMANCE_UPPER.result, e.upper, labels),
        ]
    out += [
        Result(version, window, ESTIMATED_PERFORMANCE_ERROR.result, v, {"metric": k}, details)
        for k, v in sorted(errors.items())
    ]
    out.append(
        Result(
            version,
            window,
            WINDOW_SAMPLES.result,
            float(sample.population),
            {"metric": SAMPLES_LABEL},
            details,
        )
    )
    return out


def _errors(estimator: Estimator, sample: RowSample) -> dict[str, float]:
    """Realized minus estimated on the sampled rows whose labels have arrived."""
    labelled = sample.take(estimator.labelled(sample))
    if labelled.size < MIN_LABELLED_ROWS:
        return {}
    return estimate_errors(estimator.points(labelled), estimator.realized(labelled))
