"""Default method choice: the SPEC table, checked against Evidently's own default."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.errors import ConfigError
from monitor.stats import binned, drift, selection
from monitor.stats.selection import MethodChoice
from tests.stats import evidently_oracle


@pytest.mark.parametrize(
    ("numeric", "n_unique", "n_ref", "expected"),
    [
        (True, 6, 1000, MethodChoice("ks", 0.05, "pvalue", inclusive=True)),
        (True, 6, 1001, MethodChoice("wasserstein", 0.1, "distance", inclusive=True)),
        (True, 5, 1000, MethodChoice("chisquare", 0.05, "pvalue", inclusive=False)),
        (True, 2, 1000, MethodChoice("ztest", 0.05, "pvalue", inclusive=False)),
        (True, 5, 1001, MethodChoice("jensenshannon", 0.1, "distance", inclusive=True)),
        (False, 40, 10, MethodChoice("chisquare", 0.05, "pvalue", inclusive=False)),
        (False, 3, 1000, MethodChoice("chisquare", 0.05, "pvalue", inclusive=False)),
        (False, 2, 1000, MethodChoice("ztest", 0.05, "pvalue", inclusive=False)),
        (False, 1, 1000, MethodChoice("ztest", 0.05, "pvalue", inclusive=False)),
        (False, 2, 1001, MethodChoice("jensenshannon", 0.1, "distance", inclusive=True)),
        (False, 40, 50_000, MethodChoice("jensenshannon", 0.1, "distance", inclusive=True)),
    ],
)
def test_default_choice_follows_the_spec_table(
    numeric: bool, n_unique: int, n_ref: int, expected: MethodChoice
) -> None:
    assert selection.choose_method(numeric=numeric, n_unique=n_unique, n_ref=n_ref) == expected


def _column(rng: np.random.Generator, numeric: bool, n_unique: int, n: int) -> np.ndarray:
    if numeric and n_unique > 50:
        return rng.normal(0, 1, n)
    values = np.arange(n_unique) if numeric else np.array([f"v{i}" for i in range(n_unique)])
    return rng.choice(values, n)


@pytest.mark.parametrize("numeric", [True, False])
@pytest.mark.parametrize("n_unique", [1, 2, 3, 5, 6, 1000])
@pytest.mark.parametrize("n_ref", [200, 1000, 1001, 3000])
def test_default_choice_equals_evidentlys(numeric: bool, n_unique: int, n_ref: int) -> None:
    rng = np.random.default_rng(n_unique + n_ref)
    ref, cur = _column(rng, numeric, n_unique, n_ref), _column(rng, numeric, n_unique, 300)
    if n_unique < 1000:  # the union must really have n_unique values
        assert selection.unique_count(ref, cur) == n_unique
    ours = selection.choose_method(
        numeric=numeric, n_unique=selection.unique_count(ref, cur), n_ref=ref.size
    )
    expected = evidently_oracle.default_method(ref, cur, numeric=numeric)
    assert ours.method == expected
    assert ours.threshold == evidently_oracle.TESTS[expected].default_threshold


def test_per_feature_overrides_replace_method_and_threshold() -> None:
    choice = selection.choose_method(
        numeric=True, n_unique=100, n_ref=500, method="psi", threshold=0.2
    )
    assert choice == MethodChoice("psi", 0.2, "distance", inclusive=True)
    assert selection.choose_method(numeric=True, n_unique=100, n_ref=500, threshold=0.01) == (
        MethodChoice("ks", 0.01, "pvalue", inclusive=True)
    )


def test_unknown_or_inapplicable_methods_are_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="unknown"):
        selection.choose_method(numeric=True, n_unique=10, n_ref=10, method="t-test")
    with pytest.raises(ConfigError, match="categorical"):
        selection.choose_method(numeric=False, n_unique=10, n_ref=10, method="ks")


def test_registry_names_the_methods_of_the_spec() -> None:
    assert set(selection.METHODS) == {
        "ks",
        "wasserstein",
        "chisquare",
        "ztest",
        "jensenshannon",
        "psi",
    }


@pytest.mark.parametrize("name", ["ks", "wasserstein", "jensenshannon", "psi"])
def test_registry_exact_and_binned_agree_on_numeric_data(name: str) -> None:
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(0, 1, 3000), rng.normal(0.3, 1, 2000)
    edges = drift.psi_bins(ref, 10)
    method = selection.METHODS[name]
    exact = method.exact(ref, cur, True)
    approx = method.binned(binned.rollup(ref, edges), binned.rollup(cur, edges))
    tolerance = {"ks": 0.02, "wasserstein": 0.01, "jensenshannon": 0.03, "psi": 1e-12}[name]
    assert approx.statistic == pytest.approx(exact.statistic, abs=tolerance)
    assert (exact.pvalue is None) == (approx.pvalue is None)


@pytest.mark.parametrize("name", ["chisquare", "ztest", "jensenshannon", "psi"])
def test_registry_exact_and_binned_are_identical_on_categories(name: str) -> None:
    rng = np.random.default_rng(8)
    ref, cur = rng.choice(["a", "b"], 800, p=[0.3, 0.7]), rng.choice(["a", "b"], 600)
    method = selection.METHODS[name]
    counts = [dict(zip(*np.unique(x, return_counts=True), strict=True)) for x in (ref, cur)]
    _, ref_r, cur_r = binned.align_categories(*counts)
    assert method.binned(ref_r, cur_r) == method.exact(ref, cur, False)


def test_score_gives_the_p_value_to_p_value_methods() -> None:
    score = selection.METHODS["ks"].exact([1, 2, 3], [4, 5, 6], True)
    assert score.decisive("pvalue") == pytest.approx(0.1)
    assert score.decisive("distance") == 1.0
    with pytest.raises(ValueError, match="p-value"):
        selection.Score(0.3).decisive("pvalue")
