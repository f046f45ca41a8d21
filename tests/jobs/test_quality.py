"""The quality job: missing, out-of-range and new-category ratios and schema violations, from
the rollups with a reference and from the raw rows without one."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from monitor.jobs.quality import run_quality
from monitor.services import Services
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from tests.jobs.drift_data import insert_predictions, make_model, now, set_reference, window


def _value(results: list[Result], which: str, **labels: str) -> float | None:
    (found,) = [r for r in results if r.metric == which and dict(r.labels) == labels]
    return found.value


def _current(services: Services, n: int = 1000) -> ModelRecord:
    """Amounts 0..20 (10% missing), countries DE FR XX YY (5% missing), unknown features on
    every tenth row ("colour") and on row 1 ("colour" and "size")."""
    model = make_model(services, "m", ["amount"], ["country"])
    end = now()
    num = np.linspace(0.0, 20.0, n).reshape(-1, 1)
    num[:100] = np.nan
    countries = np.array(["DE", "FR", "XX", "YY"] * (n // 4), dtype=object).reshape(-1, 1)
    countries[:50] = None
    extra: list[dict[str, object] | None] = [
        {"unknown_features": {"colour": "red"}} if i % 10 == 0 else None for i in range(n)
    ]
    extra[1] = {"unknown_features": {"colour": "blue", "size": 3}}
    ts = [end - timedelta(minutes=i % 50 + 1) for i in range(n)]
    insert_predictions(services, model, ts, num, countries, extra=extra)
    return model


def test_ratios_from_the_rollups(services: Services) -> None:
    model = _current(services)
    rng = np.random.default_rng(0)
    set_reference(
        services,
        model,
        rng.uniform(0.0, 10.0, (2000, 1)),
        rng.choice(["DE", "FR"], size=(2000, 1)).astype(object),
    )
    results = run_quality(services.context, model, window("24h", now()))
    assert _value(results, "feature_missing_ratio", feature="amount") == pytest.approx(0.1)
    assert _value(results, "feature_missing_ratio", feature="country") == pytest.approx(0.05)
    # values 0..20 evenly: above the reference's max (just under 10) is about half of them
    out_of_range = _value(results, "feature_out_of_range_ratio", feature="amount")
    assert out_of_range == pytest.approx(
        np.mean(np.linspace(0.0, 20.0, 1000)[100:] > 9.99), abs=0.01
    )
    new = sum(c in ("XX", "YY") for c in (["DE", "FR", "XX", "YY"] * 250)[50:])
    assert _value(results, "feature_new_category_ratio", feature="country") == pytest.approx(
        new / 950
    )
    assert _value(results, "schema_violations", feature="colour") == 101.0
    assert _value(results, "schema_violations", feature="size") == 1.0
    assert _value(results, "schema_violations") == 101.0
    assert _value(results, "window_samples", metric="quality") == 1000.0


def test_without_a_reference_missing_values_and_schema_violations_still_count(
    services: Services,
) -> None:
    model = _current(services)
    results = run_quality(services.context, model, window("24h", now()))
    assert _value(results, "feature_missing_ratio", feature="amount") == pytest.approx(0.1)
    assert _value(results, "feature_missing_ratio", feature="country") == pytest.approx(0.05)
    assert _value(results, "schema_violations", feature="colour") == 101.0
    assert _value(results, "schema_violations") == 101.0
    assert not [r for r in results if r.metric == "feature_out_of_range_ratio"]
