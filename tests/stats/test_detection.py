"""End to end through the pure core: choose the default method, measure, decide.

Injected drift is detected and stable features are not, for every seed, distribution and
reference size (p-value tests may false-alarm at their nominal 5%: at most 1 in 10 seeds).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from monitor.stats import binned, drift, selection, verdict

SEEDS = range(10)
CATEGORIES = np.array([f"c{i}" for i in range(10)])

Sampler = Callable[[np.random.Generator, int, bool], np.ndarray]


def _normal(rng: np.random.Generator, n: int, drifted: bool) -> np.ndarray:
    return rng.normal(3.0 + (0.3 * 1.5 if drifted else 0.0), 1.5, n)


def _lognormal(rng: np.random.Generator, n: int, drifted: bool) -> np.ndarray:
    return rng.lognormal(0.3 if drifted else 0.0, 0.8, n)


def _categorical(rng: np.random.Generator, n: int, drifted: bool) -> np.ndarray:
    weights = np.exp((2.0 if drifted else 0.0) * np.arange(10) / 10) * np.linspace(1, 2, 10)
    return rng.choice(CATEGORIES, n, p=weights / weights.sum())


SAMPLERS: dict[str, tuple[Sampler, bool]] = {
    "normal": (_normal, True),
    "lognormal": (_lognormal, True),
    "categorical": (_categorical, False),
}


def _detect(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> bool | None:
    n_unique = selection.unique_count(ref, cur)
    choice = selection.choose_method(numeric=numeric, n_unique=n_unique, n_ref=ref.size)
    score = selection.METHODS[choice.method].exact(ref, cur, numeric).decisive(choice.kind)
    return verdict.guarded_verdict(score, choice, n_ref=ref.size, n_cur=cur.size)


def _verdicts(dist: str, n_ref: int, drifted: bool) -> list[bool | None]:
    sample, numeric = SAMPLERS[dist]
    out = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        out.append(_detect(sample(rng, n_ref, False), sample(rng, 600, drifted), numeric))
    return out


@pytest.mark.parametrize("dist", SAMPLERS)
@pytest.mark.parametrize("n_ref", [500, 5000])
def test_injected_drift_is_detected_for_every_seed(dist: str, n_ref: int) -> None:
    assert _verdicts(dist, n_ref, drifted=True) == [True] * len(SEEDS)


@pytest.mark.parametrize("dist", SAMPLERS)
@pytest.mark.parametrize("n_ref", [500, 5000])
def test_stable_features_are_not_flagged(dist: str, n_ref: int) -> None:
    alarms = sum(v is True for v in _verdicts(dist, n_ref, drifted=False))
    assert alarms <= (1 if n_ref <= 1000 else 0)


@pytest.mark.parametrize("dist", ["normal", "lognormal"])
def test_rollup_path_on_percentile_bins_reaches_the_exact_verdicts(dist: str) -> None:
    sample, _ = SAMPLERS[dist]
    choice = selection.choose_method(numeric=True, n_unique=10_000, n_ref=5000)
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        ref = sample(rng, 5000, False)
        edges = drift.psi_bins(ref, 100)
        for drifted in (False, True):
            buckets = [sample(rng, 100, drifted) for _ in range(6)]
            window = binned.rollup(np.concatenate(buckets), edges)
            score = binned.wasserstein_normed(binned.rollup(ref, edges), window)
            exact = drift.wasserstein_normed(ref, np.concatenate(buckets))
            assert verdict.drift_verdict(score, choice) is drifted
            assert verdict.drift_verdict(exact, choice) is drifted
