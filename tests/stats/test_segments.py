"""Segments: top-K by volume plus __other__, and Benjamini-Hochberg across segments × features."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from monitor.stats import segments


def test_top_values_by_volume_ties_by_name() -> None:
    counts = {"de": 50, "fr": 50, "us": 100, "it": 1, "es": 0}
    assert segments.top_values(counts, k=3) == ["us", "de", "fr"]
    assert segments.top_values(counts, k=10) == ["us", "de", "fr", "it"]
    with pytest.raises(ValueError, match="k must"):
        segments.top_values(counts, k=0)


def test_the_rest_is_pooled_into_other() -> None:
    counts = {"us": 100, "de": 50, "it": 3, "es": 2}
    top = segments.top_values(counts, k=2)
    assert segments.pooled_counts(counts, top) == {"us": 100, "de": 50, "__other__": 5}
    assert segments.segment_of("it", top) == "__other__"
    assert segments.segment_of(None, top) == "__other__"
    assert segments.segment_of("us", top) == "us"
    assert segments.segment_label("country", "us") == "country=us"


def test_correction_matches_statsmodels_and_skips_segments_without_verdict() -> None:
    rng = np.random.default_rng(0)
    pvalues = list(rng.random(500) ** 3)
    with_gaps: list[float | None] = [*pvalues[:250], None, *pvalues[250:], None]
    expected = multipletests(pvalues, method="fdr_bh")[1]
    out = segments.correct_across(with_gaps)
    assert out[250] is None
    assert out[-1] is None
    kept = [p for p in out if p is not None]
    assert kept == pytest.approx(list(expected))


def test_ten_segments_by_fifty_stable_features_do_not_page_on_noise() -> None:
    rng = np.random.default_rng(1)
    pages = 0
    for _ in range(50):
        pvalues: list[float | None] = list(rng.random(10 * 50))
        raw = sum(p is not None and p < 0.05 for p in pvalues)
        assert raw > 5  # uncorrected, noise alone flags ~25 of 500
        pages += any(p is not None and p < 0.05 for p in segments.correct_across(pvalues))
    assert pages <= 5  # BH keeps the family-wise rate near 5% under the global null
