"""The multivariate drift job: do the features, taken together, still look like the reference?

Per model version with rows in the window and an active reference: a bounded random sample of
the window and of the reference (``storage.rowsample``, ``multivariate.sample_rows`` rows
per side, default 5000), then

- the **domain classifier** (``learn.domain``): cross-validated ROC AUC of a classifier telling
  window rows from reference rows; drift when it exceeds ``stats.multivariate.
  domain_auc_threshold`` for the sample sizes (0.5 + 4 sd of the AUC under no drift, never
  below 0.55), with the features whose shuffling costs the most AUC as the explanation;
- **PCA reconstruction error** (``stats.multivariate``): the window's mean distance from the
  reference's principal subspace, drift when it leaves the reference band (3 sd for the sample
  size).

The reference's sample is read once while that set is active (kept in memory, as the
estimation job keeps its fit): a tick reads only the window's sample.

Categorical features enter the classifier as categories (the 250 most frequent values of both
samples, the rest pooled) and the PCA frequency-encoded (a value's share of the reference
sample). scikit-learn runs on one thread (threadpoolctl). See docs/drift.md.

``evaluate_multivariate(db, model, window)`` is the computation (for benchmarks and callers
that want the evaluation); ``run_multivariate`` is the scheduled ``Job``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from monitor.catalogue import (
    MULTIVARIATE_DRIFT_DETECTED,
    MULTIVARIATE_DRIFT_SCORE,
    MULTIVARIATE_DRIFT_THRESHOLD,
    WINDOW_SAMPLES,
)
from monitor.ingest.schema import FeatureSchema
from monitor.jobs.base import Window
from monitor.jobs.context import JobContext
from monitor.jobs.memo import Memo, version_counts
from monitor.learn.domain import MIN_ROWS, domain_classifier
from monitor.schemas import MultivariateSettings
from monitor.stats import multivariate
from monitor.storage import rowsample
from monitor.storage.database import Database
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.storage.rowsample import FloatArray, RowSample
from monitor.storage.span import Span

DOMAIN_CLASSIFIER = "domain_classifier"
PCA_RECONSTRUCTION = "pca_reconstruction"
MAX_CATEGORIES = 250
REFERENCE_CACHE = 16
"""Reference samples kept in memory (5000 rows x 20 features: under 1 MiB each)."""
"""Category codes per feature for the classifier (scikit-learn allows at most 255)."""


@dataclass(frozen=True)
class MethodDrift:
    """One method's score and verdict for a version in a window."""

    method: str
    score: float
    threshold: float
    detected: bool | None
    details: dict[str, Any]


@dataclass(frozen=True)
class VersionMultivariate:
    model_version: str
    reference_rows: int
    window_rows: int
    sampled_reference: int
    sampled_window: int
    methods: tuple[MethodDrift, ...]


def settings_of(model: ModelRecord) -> MultivariateSettings:
    return model.options.multivariate


def run_multivariate(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
    return to_results(evaluate_multivariate(ctx.db, model, window, memo=ctx.memo), window.name)


def evaluate_multivariate(
    db: Database,
    model: ModelRecord,
    window: Window,
    *,
    settings: MultivariateSettings | None = None,
    memo: Memo | None = None,
) -> list[VersionMultivariate]:
    """Multivariate drift of ``model`` in ``window``, per version with an active reference
    (each version's rows counted once per ``memo``, shared with the tick's other jobs)."""
    settings = settings or settings_of(model)
    schema = model.schema
    if not settings.enabled or len(schema) == 0:
        return []
    min_samples = max(model.options.drift.min_samples, MIN_ROWS)
    span = Span(model.id, window.start, window.end)
    out: list[VersionMultivariate] = []
    for reference in rowsample.active_references(db, model.id):
        counts = version_counts(memo or Memo(), db, span)
        windows = rowsample.window_samples(
            db, reference.scope, span, schema, settings.sample_rows, counts=counts
        )
        if not windows:
            continue
        sample = _reference_sample(db, reference, schema, settings.sample_rows)
        for version, current in sorted(windows.items()):
            methods: tuple[MethodDrift, ...] = ()
            if min(current.size, sample.size) >= min_samples:
                methods = compare(sample, current, settings, seed=model.id)
            out.append(
                VersionMultivariate(
                    version,
                    reference.row_count,
                    current.population,
                    sample.size,
                    current.size,
                    methods,
                )
            )
    return out


@functools.lru_cache(maxsize=REFERENCE_CACHE)
def _reference_sample(
    db: Database, reference: rowsample.ActiveReference, schema: FeatureSchema, rows: int
) -> RowSample:
    """The reference's sample, read once while that set is active: its rows do not change and
    the seeded draw would pick the same ones again."""
    return rowsample.reference_sample(db, reference, schema, rows)


def compare(
    reference: RowSample, current: RowSample, settings: MultivariateSettings, *, seed: int = 0
) -> tuple[MethodDrift, ...]:
    """Both methods on two samples of rows with the same features."""
    ref_x, cur_x = classifier_matrices(reference, current)
    with threadpool_limits(limits=1):
        domain = _domain(reference, ref_x, cur_x, settings, seed)
        pca = _pca(
            frequency_matrix(reference, reference), frequency_matrix(reference, current), settings
        )
    return domain, pca


def _domain(
    reference: RowSample,
    ref_x: FloatArray,
    cur_x: FloatArray,
    settings: MultivariateSettings,
    seed: int,
) -> MethodDrift:
    score = domain_classifier(
        ref_x,
        cur_x,
        categorical=reference.categorical,
        max_rows=settings.sample_rows,
        seed=seed,
    )
    threshold = multivariate.domain_auc_threshold(score.n_reference, score.n_current)
    top = multivariate.top_features(
        list(reference.names), score.importances, k=settings.top_features
    )
    return MethodDrift(
        DOMAIN_CLASSIFIER,
        score.auc,
        threshold,
        score.auc > threshold,
        {
            "top_features": [{"feature": n, "importance": round(v, 6)} for n, v in top],
            "fold_aucs": [round(a, 6) for a in score.fold_aucs],
            "null_sd": multivariate.null_auc_std(score.n_reference, score.n_current),
            "n_ref": score.n_reference,
            "n_cur": score.n_current,
        },
    )


def _pca(ref_x: FloatArray, cur_x: FloatArray, settings: MultivariateSettings) -> MethodDrift:
    model = multivariate.fit_reconstruction(ref_x, variance=settings.pca_variance)
    value = multivariate.window_reconstruction_error(model, cur_x)
    lower, upper = multivariate.reconstruction_band(model, cur_x.shape[0])
    return MethodDrift(
        PCA_RECONSTRUCTION,
        value,
        upper,
        multivariate.outside_band(value, (lower, upper)),
        {
            "lower": lower,
            "upper": upper,
            "reference_mean": float(model.reference_errors.mean()),
            "components": int(model.halves[0].components.shape[0]),
            "n_ref": int(ref_x.shape[0]),
            "n_cur": int(cur_x.shape[0]),
        },
    )


# --- feature matrices --------------------------------------------------------------------------
# A sample holds categorical values as their hashtext codes (NaN = missing).


def _codes(ref: FloatArray, cur: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Category codes 0.. by frequency in both samples, the rarer ones pooled at
    ``MAX_CATEGORIES``; NaN = missing."""
    both = np.concatenate([ref, cur])
    values, counts = np.unique(both[~np.isnan(both)], return_counts=True)
    rank = np.empty(values.size)
    rank[np.argsort(-counts, kind="stable")] = np.arange(values.size)
    code = np.minimum(rank, MAX_CATEGORIES)

    def encode(column: FloatArray) -> FloatArray:
        out = np.full(column.size, np.nan)
        present = ~np.isnan(column)
        out[present] = code[np.searchsorted(values, column[present])]
        return out

    return encode(ref), encode(cur)


def classifier_matrices(reference: RowSample, current: RowSample) -> tuple[FloatArray, FloatArray]:
    """Reference and window rows for the domain classifier: categories as codes 0..250."""
    ref_x, cur_x = reference.features.copy(), current.features.copy()
    for j, categorical in enumerate(reference.categorical):
        if categorical:
            ref_x[:, j], cur_x[:, j] = _codes(reference.features[:, j], current.features[:, j])
    return ref_x, cur_x


def frequency_matrix(reference: RowSample, sample: RowSample) -> FloatArray:
    """``sample``'s rows for the PCA: numeric values, and each category's share of the
    reference sample (0 for a value the reference does not have, NaN when missing)."""
    out = sample.features.copy()
    for j, categorical in enumerate(reference.categorical):
        if not categorical:
            continue
        ref = reference.features[:, j]
        values, counts = np.unique(ref[~np.isnan(ref)], return_counts=True)
        column = sample.features[:, j]
        if values.size == 0:
            out[:, j] = np.where(np.isnan(column), np.nan, 0.0)
            continue
        at = np.clip(np.searchsorted(values, column), 0, values.size - 1)
        share = np.where(values[at] == column, counts[at] / counts.sum(), 0.0)
        out[:, j] = np.where(np.isnan(column), np.nan, share)
    return out


# --- write -------------------------------------------------------------------------------------


def to_results(versions: list[VersionMultivariate], window: str) -> list[Result]:
    out: list[Result] = []
    for v in versions:
        for m in v.methods:
            labels = {"method": m.method}
            details = {
                **m.details,
                "threshold": m.threshold,
                "detected": m.detected,
                "window_rows": v.window_rows,
                "reference_rows": v.reference_rows,
            }
            figures: list[tuple[str, float | None, dict[str, Any] | None]] = [
                (MULTIVARIATE_DRIFT_SCORE.result, m.score, details),
                (MULTIVARIATE_DRIFT_THRESHOLD.result, m.threshold, None),
            ]
            if m.detected is not None:
                figures.append((MULTIVARIATE_DRIFT_DETECTED.result, float(m.detected), details))
            out += [
                Result(v.model_version, window, metric, value, labels, d)
                for metric, value, d in figures
            ]
        out.append(
            Result(
                v.model_version,
                window,
                WINDOW_SAMPLES.result,
                float(v.sampled_window),
                {"metric": "multivariate"},
                {"window_rows": v.window_rows, "sampled_reference": v.sampled_reference},
            )
        )
    return out
