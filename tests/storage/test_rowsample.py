"""Bounded uniform row samples of a reference and a window, on a real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from monitor.services import Services
from monitor.storage.rowsample import (
    active_references,
    hash_codes,
    keep_share,
    reference_sample,
    window_counts,
    window_samples,
)
from monitor.storage.span import Scope, Span
from tests.jobs.drift_data import insert_predictions, make_model, now, set_reference, spread


def test_keep_share_almost_never_falls_short() -> None:
    assert keep_share(100, 500) == 1.0
    share = keep_share(1_000_000, 50_000)
    expected, sd = share * 1_000_000, np.sqrt(share * (1 - share) * 1_000_000)
    assert (expected - 50_000) / sd > 4.5  # a shortfall is a 5-sigma event
    assert share < 0.052


def test_reference_sample_is_bounded_uniform_and_repeatable(services: Services) -> None:
    model = make_model(services, "m", numeric=["x"], categorical=["c"])
    rng = np.random.default_rng(1)
    n = 6000
    x = np.arange(n, dtype=np.float64).reshape(-1, 1)
    cat = np.array([["a" if i % 2 else "b"] for i in range(n)], dtype=object)
    set_reference(services, model, x, cat, prediction=rng.random(n).tolist(), label=[1.0] * n)
    (ref,) = active_references(services.db, model.id)
    assert (ref.model_version, ref.row_count, ref.scope) == ("", n, Scope(model.id, None, ()))

    sample = reference_sample(services.db, ref, model.schema, 1000)
    again = reference_sample(services.db, ref, model.schema, 1000)
    assert sample.size == 1000
    assert sample.population == n
    np.testing.assert_array_equal(sample.features, again.features)  # seeded
    assert sample.names == ("x", "c")
    assert sample.categorical == (False, True)
    # uniform: the sampled positions cover the table evenly (mean of U(0, n) within 4 sd)
    assert abs(sample.features[:, 0].mean() - n / 2) < 4 * n / np.sqrt(12 * 1000)
    codes = hash_codes(services.db, ["a", "b"])
    assert set(np.unique(sample.features[:, 1])) == set(codes.astype(float))
    assert np.all(sample.label == 1.0)
    assert np.isnan(sample.label_code).all()

    whole = reference_sample(services.db, ref, model.schema, 10_000)
    assert whole.size == n  # all rows when the limit allows
    np.testing.assert_array_equal(np.sort(whole.features[:, 0]), x[:, 0])


def test_window_sample_per_version_with_labels_joined(services: Services) -> None:
    model = make_model(services, "w", numeric=["x", "y"])
    end = now()
    rng = np.random.default_rng(2)
    ts = spread(end, 3000, 1.0, rng)
    num = rng.normal(size=(3000, 2))
    num[0, 1] = np.nan
    ids = [f"p{i}" for i in range(3000)]
    insert_predictions(services, model, ts[:2000], num[:2000], ids=ids[:2000], version="1")
    insert_predictions(services, model, ts[2000:], num[2000:], ids=ids[2000:], version="2")
    old = [end - timedelta(hours=5)] * 10
    insert_predictions(services, model, old, np.zeros((10, 2)), version="1")
    services.ingest.labels(
        [{"model": "w", "prediction_id": f"p{i}", "label": 1} for i in range(500)]
    )

    span = Span(model.id, end - timedelta(hours=1), end)
    got = window_samples(services.db, Scope(model.id, None), span, model.schema, 1500)
    assert sorted(got) == ["1", "2"]
    assert (got["1"].size, got["1"].population) == (1500, 2000)
    assert (got["2"].size, got["2"].population) == (1000, 1000)
    labelled = ~np.isnan(got["1"].label)
    # 500 of 2000 rows of version 1 are labelled: about a quarter of the sample
    assert abs(labelled.mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 1500)
    assert np.isnan(got["2"].label).all()

    counts = window_counts(services.db, span)
    assert counts == {"1": 2000, "2": 1000}
    given = window_samples(services.db, Scope(model.id, None), span, model.schema, 1500, (), counts)
    for version in ("1", "2"):  # the caller's counts: the same seeded sample
        np.testing.assert_array_equal(given[version].features, got[version].features)
        assert given[version].population == got[version].population
    only_2 = window_samples(
        services.db, Scope(model.id, None, ("1",)), span, model.schema, 1500, (), counts
    )
    assert list(only_2) == ["2"]  # the model-wide scope leaves out versions with their own

    everything = window_samples(services.db, Scope(model.id, "1"), span, model.schema, 5000)
    assert list(everything) == ["1"]
    assert everything["1"].size == 2000
    assert np.isnan(everything["1"].features).sum() == 1
    np.testing.assert_allclose(
        np.sort(np.nan_to_num(everything["1"].features[:, 0])), np.sort(num[:2000, 0])
    )


@pytest.mark.parametrize("limit", [1, 7])
def test_tiny_limits_are_exact(services: Services, limit: int) -> None:
    model = make_model(services, f"t{limit}", numeric=["x"])
    set_reference(services, model, np.arange(50.0).reshape(-1, 1))
    (ref,) = active_references(services.db, model.id)
    assert reference_sample(services.db, ref, model.schema, limit).size == limit
