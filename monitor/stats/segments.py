"""Segments: which values of a categorical feature get their own series, and the correction
for testing many segments × features at once.

Series stay bounded: the top-K values by volume each get a segment, everything else is pooled
into ``__other__``. A segment is labelled ``feature=value``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from monitor.stats.verdict import benjamini_hochberg

OTHER = "__other__"
DEFAULT_TOP_K = 10


def top_values(counts: Mapping[str, int], k: int = DEFAULT_TOP_K) -> list[str]:
    """The ``k`` values with most rows, most first; ties broken by value so runs agree."""
    if k < 1:
        raise ValueError("k must be at least 1")
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [value for value, count in ranked[:k] if count > 0]


def segment_of(value: str | None, top: Sequence[str]) -> str:
    """The segment a row's value belongs to: itself if it is a top value, else ``__other__``."""
    return value if value is not None and value in top else OTHER


def pooled_counts(counts: Mapping[str, int], top: Sequence[str]) -> dict[str, int]:
    """Row counts per segment, the non-top values summed into ``__other__`` (if any)."""
    out = {value: counts.get(value, 0) for value in top}
    rest = sum(count for value, count in counts.items() if value not in out)
    if rest:
        out[OTHER] = rest
    return out


def segment_label(feature: str, value: str) -> str:
    return f"{feature}={value}"


def correct_across(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg over every (segment, feature) p-value that has a verdict.

    None (a segment below ``min_samples``, or a distance rather than a p-value) passes through
    and does not count towards m, so small segments do not dilute the correction.
    """
    tested = [i for i, p in enumerate(pvalues) if p is not None]
    out: list[float | None] = list(pvalues)
    if not tested:
        return out
    adjusted = benjamini_hochberg(np.array([pvalues[i] for i in tested], dtype=np.float64))
    for i, p in zip(tested, adjusted, strict=True):
        out[i] = float(p)
    return out
