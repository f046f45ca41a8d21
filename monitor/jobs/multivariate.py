"""The multivariate drift job: do the features, taken together, still look like the reference?

Per model version with rows in the window and an active reference: a bounded random sample of
the window and of the reference (``storage.feature_samples``, ``multivariate.sample_rows`` rows
per side, default 5000), then

- the **domain classifier** (``learn.domain``): cross-validated ROC AUC of a classifier telling
  window rows from reference rows; drift when it exceeds ``stats.multivariate.
  domain_auc_threshold`` for the sample sizes (0.5 + 4 sd of the AUC under no drift, never
  below 0.55), with the features whose shuffling costs the most AUC as the explanation;
- **PCA reconstruction error** (``stats.multivariate``): the window's mean distance from the
  reference's principal subspace, drift when it leaves the reference band (3 sd for the sample
  size).

Categorical features enter the classifier as categories (the 250 most frequent values of both
samples, the rest pooled) and the PCA frequency-encoded (a value's share of the reference
sample). scikit-learn runs on one thread (threadpoolctl). See docs/drift.md.

``evaluate_multivariate(db, model, window)`` is the computation (for benchmarks and callers
that want the evaluation); ``run_multivariate`` is the scheduled ``Job``.
"""

from __future__ import annotations

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
from monitor.ingest.schema import NUMERIC, FeatureSchema
from monitor.jobs.base import Window
from monitor.jobs.context import JobContext
from monitor.jobs.drift import drift_settings
from monitor.learn.domain import MIN_ROWS, domain_classifier
from monitor.schemas import MultivariateSettings
from monitor.stats import multivariate
from monitor.storage import feature_samples
from monitor.storage.database import Database
from monitor.storage.feature_samples import FloatArray, ObjectArray, RowSample, VersionRows
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.storage.span import Span

DOMAIN_CLASSIFIER = "domain_classifier"
PCA_RECONSTRUCTION = "pca_reconstruction"
MAX_CATEGORIES = 250
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
    return MultivariateSettings.model_validate(model.config.get("multivariate") or {})


def run_multivariate(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
    return to_results(evaluate_multivariate(ctx.db, model, window), window.name)


def evaluate_multivariate(
    db: Database,
    model: ModelRecord,
    window: Window,
    *,
    settings: MultivariateSettings | None = None,
) -> list[VersionMultivariate]:
    """Multivariate drift of ``model`` in ``window``, per version with an active reference."""
    settings = settings or settings_of(model)
    schema = model.schema
    if not settings.enabled or len(schema) == 0:
        return []
    min_samples = max(drift_settings(model).min_samples, MIN_ROWS)
    span = Span(model.id, window.start, window.end)
    return [
        _version(db, model, window, v, settings, min_samples)
        for v in feature_samples.versions_in(db, span)
    ]


def _version(
    db: Database,
    model: ModelRecord,
    window: Window,
    version: VersionRows,
    settings: MultivariateSettings,
    min_samples: int,
) -> VersionMultivariate:
    schema = model.schema
    n_num, n_cat = len(schema.num_index), len(schema.cat_index)
    span = Span(model.id, window.start, window.end)
    current = feature_samples.sample(
        db,
        feature_samples.window_rows(model.id, version.version, span),
        limit=settings.sample_rows,
        n_num=n_num,
        n_cat=n_cat,
        seed=feature_samples.seed_of(window.end, model.id, version.version),
    )
    reference = feature_samples.sample(
        db,
        feature_samples.reference_rows(version.reference_id),
        limit=settings.sample_rows,
        n_num=n_num,
        n_cat=n_cat,
        seed=feature_samples.seed_of(window.end, version.reference_id),
    )
    methods: tuple[MethodDrift, ...] = ()
    if min(current.rows, reference.rows) >= min_samples:
        methods = compare(schema, reference, current, settings, seed=model.id)
    return VersionMultivariate(
        version.version,
        version.reference_rows,
        version.rows,
        reference.rows,
        current.rows,
        methods,
    )


def compare(
    schema: FeatureSchema,
    reference: RowSample,
    current: RowSample,
    settings: MultivariateSettings,
    *,
    seed: int = 0,
) -> tuple[MethodDrift, ...]:
    """Both methods on two samples of rows with ``schema``'s features."""
    names = [f.name for f in schema.features]
    ref_x, cur_x, categorical = classifier_matrices(schema, reference, current)
    with threadpool_limits(limits=1):
        domain = _domain(names, ref_x, cur_x, categorical, settings, seed)
        pca = _pca(
            frequency_matrix(schema, reference, reference),
            frequency_matrix(schema, reference, current),
            settings,
        )
    return domain, pca


def _domain(
    names: list[str],
    ref_x: FloatArray,
    cur_x: FloatArray,
    categorical: list[bool],
    settings: MultivariateSettings,
    seed: int,
) -> MethodDrift:
    score = domain_classifier(
        ref_x, cur_x, categorical=categorical, max_rows=settings.sample_rows, seed=seed
    )
    threshold = multivariate.domain_auc_threshold(score.n_reference, score.n_current)
    top = multivariate.top_features(names, score.importances, k=settings.top_features)
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


def _numeric(schema: FeatureSchema, sample: RowSample, name: str) -> FloatArray:
    return sample.num[:, schema.num_index[name]]


def _categories(schema: FeatureSchema, sample: RowSample, name: str) -> ObjectArray:
    return sample.cat[:, schema.cat_index[name]]


def _codes(ref: ObjectArray, cur: ObjectArray) -> tuple[FloatArray, FloatArray]:
    """Category codes 0.. by frequency in both samples (the rest pooled), NaN = missing."""
    both = np.concatenate([ref, cur])
    present = both[np.array([v is not None for v in both], dtype=bool)]
    values, counts = np.unique(present, return_counts=True)
    kept = values[np.argsort(-counts, kind="stable")][:MAX_CATEGORIES]
    code = {v: float(i) for i, v in enumerate(kept)}
    pooled = float(len(kept))

    def encode(column: ObjectArray) -> FloatArray:
        return np.array([np.nan if v is None else code.get(v, pooled) for v in column])

    return encode(ref), encode(cur)


def classifier_matrices(
    schema: FeatureSchema, reference: RowSample, current: RowSample
) -> tuple[FloatArray, FloatArray, list[bool]]:
    """Reference and window rows for the domain classifier, and which columns are categories."""
    ref_cols: list[FloatArray] = []
    cur_cols: list[FloatArray] = []
    for f in schema.features:
        if f.kind == NUMERIC:
            ref_cols.append(_numeric(schema, reference, f.name))
            cur_cols.append(_numeric(schema, current, f.name))
        else:
            ref_codes, cur_codes = _codes(
                _categories(schema, reference, f.name), _categories(schema, current, f.name)
            )
            ref_cols.append(ref_codes)
            cur_cols.append(cur_codes)
    categorical = [f.kind != NUMERIC for f in schema.features]
    return np.column_stack(ref_cols), np.column_stack(cur_cols), categorical


def frequency_matrix(schema: FeatureSchema, reference: RowSample, sample: RowSample) -> FloatArray:
    """``sample``'s rows for the PCA: numeric values, and each category's share of the
    reference sample (0 for a value the reference does not have, NaN when missing)."""
    columns: list[FloatArray] = []
    for f in schema.features:
        if f.kind == NUMERIC:
            columns.append(_numeric(schema, sample, f.name))
            continue
        present = [v for v in _categories(schema, reference, f.name) if v is not None]
        values, counts = np.unique(np.array(present, dtype=object), return_counts=True)
        share = {v: n / max(len(present), 1) for v, n in zip(values, counts, strict=True)}
        column = _categories(schema, sample, f.name)
        columns.append(np.array([np.nan if v is None else share.get(v, 0.0) for v in column]))
    return np.column_stack(columns)


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
            out.append(
                Result(
                    v.model_version,
                    window,
                    MULTIVARIATE_DRIFT_SCORE.result,
                    m.score,
                    labels,
                    details,
                )
            )
            out.append(
                Result(
                    v.model_version,
                    window,
                    MULTIVARIATE_DRIFT_THRESHOLD.result,
                    m.threshold,
                    labels,
                )
            )
            if m.detected is not None:
                out.append(
                    Result(
                        v.model_version,
                        window,
                        MULTIVARIATE_DRIFT_DETECTED.result,
                        float(m.detected),
                        labels,
                        details,
                    )
                )
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
