"""Estimated performance inside each segment of a model with ``segments: [country, ...]``.

The estimation job's uniform window sample already holds every row's categorical codes, so a
segment is a subset of it: per segment feature, the ``segment_top_k`` values with most sampled
rows (ties by code, so runs agree) each get a segment and the rest, missing values included,
``__other__``, as the segment job does (its top-K is counted over the whole window, so near a
tie at rank K the two may pick a different last value). The model's estimator, fitted on the
whole reference, scores each segment's rows: CBPE and DLE take a row's calibration or loss
model from its features and score, so the segment needs no fit of its own, and the band is
that of the segment's sampled rows. A segment with fewer than ``drift.min_samples`` sampled
rows (and at least ``MIN_WINDOW_ROWS``) gets no estimate.
"""

from __future__ import annotations

import numpy as np

from monitor.catalogue import (
    SEGMENT_ESTIMATED_PERFORMANCE,
    SEGMENT_ESTIMATED_PERFORMANCE_LOWER,
    SEGMENT_ESTIMATED_PERFORMANCE_UPPER,
)
from monitor.jobs.estimators import BoolArray, Estimator
from monitor.stats._arrays import FloatArray
from monitor.stats.segments import OTHER, segment_label
from monitor.storage.database import Database
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.storage.rowsample import RowSample, code_texts
from monitor.storage.span import Span


def top_codes(codes: FloatArray, k: int) -> list[float]:
    """The ``k`` codes with most rows (NaN = missing left out), most first, ties by code."""
    present = codes[~np.isnan(codes)]
    values, counts = np.unique(present, return_counts=True)
    order = np.lexsort((values, -counts))[:k]
    return [float(v) for v in values[order]]


def segments_of(
    codes: FloatArray, top: list[float], names: dict[float, str]
) -> dict[str, BoolArray]:
    """Each segment's rows: one per named top code, and ``__other__`` for the rest."""
    out = {names[c]: np.asarray(codes == c) for c in top if c in names}
    rest = ~np.isin(codes, [c for c in top if c in names])
    if rest.any():
        out[OTHER] = np.asarray(rest)
    return out


def segment_results(
    db: Database,
    model: ModelRecord,
    estimator: Estimator,
    span: Span,
    version: str,
    window: str,
    sample: RowSample,
    min_rows: int,
) -> list[Result]:
    """Per segment of each configured segment feature: estimate and band, on its sampled rows."""
    options = model.options
    out: list[Result] = []
    usable = estimator.usable(sample)
    for feature in options.segments:
        position = model.schema.cat_index.get(feature)
        if position is None or feature not in sample.names:
            continue
        codes = sample.features[:, sample.names.index(feature)]
        top = top_codes(codes[usable], options.segment_top_k)
        names = code_texts(db, model.id, version, span, position, top)
        for value, rows in segments_of(codes, top, names).items():
            scored = rows & usable
            if int(scored.sum()) < min_rows:
                continue
            label = segment_label(feature, value)
            out += _estimates(estimator, sample.take(scored), version, window, label)
    return out


def _estimates(
    estimator: Estimator, rows: RowSample, version: str, window: str, segment: str
) -> list[Result]:
    details = {"method": estimator.method, "sampled": rows.size}
    out: list[Result] = []
    for name, e in estimator.estimate(rows).items():
        labels = {"segment": segment, "metric": name}
        out += [
            Result(
                version,
                window,
                SEGMENT_ESTIMATED_PERFORMANCE.result,
                e.value,
                labels,
                {**details, "std": e.std},
            ),
            Result(version, window, SEGMENT_ESTIMATED_PERFORMANCE_LOWER.result, e.lower, labels),
            Result(version, window, SEGMENT_ESTIMATED_PERFORMANCE_UPPER.result, e.upper, labels),
        ]
    return out
