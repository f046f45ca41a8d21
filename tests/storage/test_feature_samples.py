"""Bounded, stratified row samples: at most ``limit`` rows per stratum, exact stratum counts,
no part of the window favoured, the same rows for the same seed, top values without reading
every distinct one."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from monitor.services import Services
from monitor.storage import feature_samples
from monitor.storage.feature_samples import OTHER, Strata
from monitor.storage.span import Span
from tests.jobs.drift_data import insert_predictions, make_model, now, set_reference


def _window(services: Services, n: int = 20_000) -> tuple[int, Span]:
    model = make_model(services, "m", ["index", "x"], ["country"])
    end = now()
    # row i is i seconds before the end: "index" tells where in the window a row lies
    ts = [end - timedelta(seconds=i + 1) for i in range(n)]
    num = np.column_stack([np.arange(n, dtype=float), np.ones(n)])
    countries = np.array(
        [["DE"] if i % 2 else ["FR"] if i % 4 == 0 else [f"c{i % 1000}"] for i in range(n)],
        dtype=object,
    )
    insert_predictions(services, model, ts, num, countries)
    return model.id, Span(model.id, end - timedelta(days=1), end)


def test_a_uniform_sample_is_bounded_and_spread_over_the_window(services: Services) -> None:
    model_id, span = _window(services)
    rows = feature_samples.window_rows(model_id, "", span)
    sample = feature_samples.sample(services.db, rows, limit=2000, n_num=2, n_cat=1, seed=0.3)
    assert sample.rows == 2000
    assert sample.population == 20_000
    # a LIMIT without the random order would keep the rows scanned first
    assert abs(np.mean(sample.num[:, 0]) - 10_000) < 600  # sd of the mean ~130
    assert len(set(sample.num[:, 0])) == 2000  # without replacement
    again = feature_samples.sample(services.db, rows, limit=2000, n_num=2, n_cat=1, seed=0.3)
    assert sorted(again.num[:, 0]) == sorted(sample.num[:, 0])
    other = feature_samples.sample(services.db, rows, limit=2000, n_num=2, n_cat=1, seed=-0.4)
    assert sorted(other.num[:, 0]) != sorted(sample.num[:, 0])


def test_strata_get_at_most_limit_rows_each_and_their_exact_counts(services: Services) -> None:
    model_id, span = _window(services)
    rows = feature_samples.window_rows(model_id, "", span)
    top = feature_samples.top_values(services.db, rows, 0, 2)
    assert top == [("DE", 10_000), ("FR", 5000)]
    strata = Strata(0, ("DE", "FR"))
    sample = feature_samples.sample(
        services.db, rows, limit=300, n_num=2, n_cat=1, strata=strata, seed=0.1
    )
    assert sample.counts == {"DE": 10_000, "FR": 5000, OTHER: 5000}
    for name in ("DE", "FR", OTHER):
        part = sample.where(name)
        assert part.rows == 300
        if name != OTHER:
            assert set(part.cat[:, 0]) == {name}
    # the counts from the top values and the row count: the same counts, the same draw
    assert feature_samples.stratum_counts(top, 20_000) == sample.counts
    known = feature_samples.sample(
        services.db,
        rows,
        limit=300,
        n_num=2,
        n_cat=1,
        strata=strata,
        seed=0.1,
        counts=feature_samples.stratum_counts(top, 20_000),
    )
    assert known.counts == sample.counts
    assert sorted(known.num[:, 0]) == sorted(sample.num[:, 0])
    # c2, c6, ..., c998: 250 more values, 20 rows each
    everything = feature_samples.top_values(services.db, rows, 0, 1000)
    assert len(everything) == 252
    assert everything[-1] == ("c998", 20)


def test_stratum_counts_pool_the_rest_as_other() -> None:
    assert feature_samples.stratum_counts([("DE", 6), ("FR", 3)], 10) == {
        "DE": 6,
        "FR": 3,
        OTHER: 1,
    }
    assert feature_samples.stratum_counts([("DE", 6)], 6) == {"DE": 6}


def test_the_reference_and_shorter_rows_are_padded(services: Services) -> None:
    model = make_model(services, "m", ["a", "b"], ["c"])
    ref_id = set_reference(
        services, model, np.array([[1.0], [2.0], [3.0]]), np.array([[None], ["x"], ["y"]])
    )
    sample = feature_samples.sample(
        services.db, feature_samples.reference_rows(ref_id), limit=10, n_num=2, n_cat=1
    )
    assert sample.rows == 3
    assert sample.population == 3
    assert sorted(sample.num[:, 0]) == [1.0, 2.0, 3.0]
    assert np.isnan(sample.num[:, 1]).all()
    assert sorted(v for v in sample.cat[:, 0] if v is not None) == ["x", "y"]


def test_versions_are_matched_with_their_reference(services: Services) -> None:
    model = make_model(services, "m", ["a"])
    end = now()
    own = set_reference(services, model, np.ones((5, 1)), version="v2")
    shared = set_reference(services, model, np.ones((7, 1)))
    ts = [end - timedelta(minutes=1)] * 3
    insert_predictions(services, model, ts, np.ones((3, 1)), version="v1")
    insert_predictions(services, model, ts[:2], np.ones((2, 1)), version="v2")
    span = Span(model.id, end - timedelta(hours=1), end)
    found = {
        v.version: (v.reference_id, v.reference_rows, v.rows)
        for v in feature_samples.versions_in(services.db, span)
    }
    assert found == {"v1": (shared, 7, 3), "v2": (own, 5, 2)}
