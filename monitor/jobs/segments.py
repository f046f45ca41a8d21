"""The segment job: drift and missing values inside each segment, against the same segment of
the reference.

A model configured with ``segments: [country, plan]`` (declared categorical features) gets,
per segment feature, per model version with an active reference:

- its top ``segment_top_k`` values by volume in the window (default 10), plus ``__other__`` for
  the rest (bounded series whatever the feature's cardinality), labelled ``country=DE``;
- a stratified sample of the window and of the reference, at most ``segment_sample_rows``
  rows per segment and side (default 1000; ``storage.feature_samples``);
- per segment and feature: the two-sample test (KS for numeric, chi-square for categorical
  features) on the segment's rows of both samples. Segments with fewer than
  ``drift.min_samples`` sampled rows on either side give a score but no verdict;
- Benjamini-Hochberg over every (segment, feature) p-value of the version, so 10 segments × 50
  features do not page on noise: drift where the adjusted p-value is at most 0.05;
- the share of the segment's rows with each feature missing (from its sample: ±0.03 at 1000
  rows), and the segment's exact row count in the window.

``evaluate_segments(db, model, window)`` is the computation; ``run_segments`` the ``Job``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.catalogue import (
    SEGMENT_DRIFT_DETECTED,
    SEGMENT_DRIFT_PVALUE,
    SEGMENT_DRIFT_SCORE,
    SEGMENT_MISSING_RATIO,
    SEGMENT_WINDOW_SAMPLES,
)
from monitor.ingest.schema import NUMERIC, Feature
from monitor.jobs.base import Window
from monitor.jobs.context import JobContext
from monitor.jobs.memo import Memo, version_counts
from monitor.stats import drift as tests
from monitor.stats import segments
from monitor.storage import feature_samples
from monitor.storage.database import Database
from monitor.storage.feature_samples import RowSample, Strata, VersionRows
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.storage.span import Span

ALPHA = SEGMENT_DRIFT_DETECTED.threshold


@dataclass(frozen=True)
class SegmentSettings:
    features: tuple[str, ...]
    top_k: int
    sample_rows: int
    min_samples: int

    @classmethod
    def of(cls, model: ModelRecord) -> SegmentSettings:
        options = model.options
        return cls(
            tuple(options.segments),
            options.segment_top_k,
            options.segment_sample_rows,
            options.drift.min_samples,
        )


@dataclass(frozen=True)
class FeatureInSegment:
    """One feature inside one segment."""

    feature: str
    method: str
    score: float | None
    pvalue: float | None
    adjusted_pvalue: float | None
    detected: bool | None
    missing_ratio: float | None
    n_ref: int
    n_cur: int


@dataclass(frozen=True)
class Segment:
    label: str  # feature=value
    window_rows: int
    reference_rows: int
    features: tuple[FeatureInSegment, ...]


@dataclass(frozen=True)
class VersionSegments:
    model_version: str
    segments: tuple[Segment, ...]


def run_segments(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
    return to_results(evaluate_segments(ctx.db, model, window, memo=ctx.memo), window.name)


def evaluate_segments(
    db: Database,
    model: ModelRecord,
    window: Window,
    *,
    settings: SegmentSettings | None = None,
    memo: Memo | None = None,
) -> list[VersionSegments]:
    settings = settings or SegmentSettings.of(model)
    known = [f for f in settings.features if f in model.schema.cat_index]
    if not known:
        return []
    span = Span(model.id, window.start, window.end)
    out = []
    counts = version_counts(memo or Memo(), db, span)
    for version in feature_samples.versions_in(db, span, counts):
        found = [s for f in known for s in _segments_of(db, model, span, version, f, settings)]
        out.append(VersionSegments(version.version, tuple(_corrected(found))))
    return out


def _segments_of(
    db: Database,
    model: ModelRecord,
    span: Span,
    version: VersionRows,
    feature: str,
    settings: SegmentSettings,
) -> list[Segment]:
    schema = model.schema
    position = schema.cat_index[feature]
    window_rows = feature_samples.window_rows(model.id, version.version, span)
    found = feature_samples.top_values(db, window_rows, position, settings.top_k)
    top = [v for v, _ in found]
    strata = Strata(position, tuple(top))
    n_num, n_cat = len(schema.num_index), len(schema.cat_index)
    current = feature_samples.sample(
        db,
        window_rows,
        limit=settings.sample_rows,
        strata=strata,
        seed=feature_samples.seed_of(span.end, model.id, version.version, feature),
        n_num=n_num,
        n_cat=n_cat,
        counts=feature_samples.stratum_counts(found, version.rows),
    )
    reference = feature_samples.sample(
        db,
        feature_samples.reference_rows(version.reference_id),
        limit=settings.sample_rows,
        strata=strata,
        seed=feature_samples.seed_of(span.end, version.reference_id, feature),
        n_num=n_num,
        n_cat=n_cat,
    )
    names = [*top, *([segments.OTHER] if segments.OTHER in current.counts else [])]
    others = [f for f in schema.features if f.name != feature]
    return [
        _segment(
            segments.segment_label(feature, name),
            current.where(name),
            reference.where(name),
            others,
            model,
            settings.min_samples,
        )
        for name in names
    ]


def _segment(
    label: str,
    current: RowSample,
    reference: RowSample,
    features: list[Feature],
    model: ModelRecord,
    min_samples: int,
) -> Segment:
    decided = min(current.rows, reference.rows) >= min_samples
    return Segment(
        label,
        current.population,
        reference.population,
        tuple(_feature(f, current, reference, model, decided) for f in features),
    )


def _feature(
    feature: Feature, current: RowSample, reference: RowSample, model: ModelRecord, decided: bool
) -> FeatureInSegment:
    schema = model.schema
    cur: npt.NDArray[Any]
    ref: npt.NDArray[Any]
    if feature.kind == NUMERIC:
        cur_all = current.num[:, schema.num_index[feature.name]]
        ref_all = reference.num[:, schema.num_index[feature.name]]
        cur, ref = cur_all[~np.isnan(cur_all)], ref_all[~np.isnan(ref_all)]
        method = "ks"
    else:
        cur_text = current.cat[:, schema.cat_index[feature.name]]
        ref_text = reference.cat[:, schema.cat_index[feature.name]]
        cur = np.array([v for v in cur_text if v is not None], dtype=str)
        ref = np.array([v for v in ref_text if v is not None], dtype=str)
        method = "chisquare"
    missing = current.rows - int(cur.size)
    score = pvalue = None
    if cur.size and ref.size:
        if feature.kind == NUMERIC:
            result = tests.ks(ref, cur)
        else:
            _, ref_counts, cur_counts = tests.category_counts(ref, cur)
            result = tests.chi_square_two_sample(ref_counts, cur_counts)
        score, pvalue = result.statistic, result.pvalue
    return FeatureInSegment(
        feature.name,
        method,
        score,
        pvalue if decided and min(cur.size, ref.size) > 0 else None,
        None,
        None,
        missing / current.rows if current.rows else None,
        int(ref.size),
        int(cur.size),
    )


def _corrected(found: list[Segment]) -> list[Segment]:
    """Benjamini-Hochberg across every (segment, feature) with a verdict; the rest pass."""
    flat = [f.pvalue for s in found for f in s.features]
    adjusted = iter(segments.correct_across(flat))
    out = []
    for s in found:
        features = []
        for f in s.features:
            p = next(adjusted)
            detected = None if p is None else p <= ALPHA
            features.append(
                FeatureInSegment(
                    f.feature,
                    f.method,
                    f.score,
                    f.pvalue,
                    p,
                    detected,
                    f.missing_ratio,
                    f.n_ref,
                    f.n_cur,
                )
            )
        out.append(Segment(s.label, s.window_rows, s.reference_rows, tuple(features)))
    return out


def to_results(versions: list[VersionSegments], window: str) -> list[Result]:
    out: list[Result] = []
    for v in versions:
        for s in v.segments:
            out.append(
                Result(
                    v.model_version,
                    window,
                    SEGMENT_WINDOW_SAMPLES.result,
                    float(s.window_rows),
                    {"segment": s.label},
                    {"reference_rows": s.reference_rows},
                )
            )
            for f in s.features:
                labels = {"segment": s.label, "feature": f.feature, "method": f.method}
                details = {
                    "pvalue": f.pvalue,
                    "adjusted_pvalue": f.adjusted_pvalue,
                    "threshold": ALPHA,
                    "detected": f.detected,
                    "n_ref": f.n_ref,
                    "n_cur": f.n_cur,
                }
                if f.score is not None:
                    out.append(
                        Result(
                            v.model_version,
                            window,
                            SEGMENT_DRIFT_SCORE.result,
                            f.score,
                            labels,
                            details,
                        )
                    )
                if f.adjusted_pvalue is not None:
                    out.append(
                        Result(
                            v.model_version,
                            window,
                            SEGMENT_DRIFT_PVALUE.result,
                            f.adjusted_pvalue,
                            labels,
                            details,
                        )
                    )
                if f.detected is not None:
                    out.append(
                        Result(
                            v.model_version,
                            window,
                            SEGMENT_DRIFT_DETECTED.result,
                            float(f.detected),
                            labels,
                            details,
                        )
                    )
                if f.missing_ratio is not None:
                    out.append(
                        Result(
                            v.model_version,
                            window,
                            SEGMENT_MISSING_RATIO.result,
                            f.missing_ratio,
                            {"segment": s.label, "feature": f.feature},
                        )
                    )
    return out
