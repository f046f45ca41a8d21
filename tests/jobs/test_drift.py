"""The drift job: injected drift is found and stable columns are not (exact and rollup paths,
small and large references), the minimum-sample guard, overrides, prediction and label drift,
per-version references and the Result rows the runner writes."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from monitor.jobs.drift import evaluate_drift, run_drift
from monitor.jobs.runner import run_jobs
from monitor.services import Services
from monitor.storage.drift import window as drift_window
from monitor.storage.results import Result, read_latest
from tests.jobs.drift_data import (
    insert_predictions,
    make_model,
    now,
    set_reference,
    spread,
    window,
)

NUMERIC = ["shift", "scale", "flat", "steady", "few"]
CATEGORICAL = ["colour", "calm", "flag"]
DRIFTED = {"shift", "scale", "few", "colour"}


def _columns(rng: np.random.Generator, n: int, drifted: bool) -> tuple[np.ndarray, np.ndarray]:
    d = 1.0 if drifted else 0.0
    num = np.column_stack(
        [
            rng.normal(0.6 * d, 1.0, n),  # shift: location
            rng.lognormal(0.0, 1.0 + 0.6 * d, n),  # scale: spread of a skewed column
            rng.uniform(0.0, 10.0, n),  # flat: stable
            rng.normal(5.0, 2.0, n),  # steady: stable
            rng.choice(4, p=[0.4, 0.3, 0.2, 0.1] if not d else [0.1, 0.2, 0.3, 0.4], size=n),
        ]
    ).astype(np.float64)
    colour = rng.choice(
        ["red", "green", "blue"], p=[0.5, 0.3, 0.2] if not d else [0.2, 0.3, 0.5], size=n
    )
    calm = rng.choice(["a", "b", "c", "d"], size=n)
    flag = rng.choice(["yes", "no"], p=[0.3, 0.7], size=n)
    return num, np.column_stack([colour, calm, flag]).astype(object)


def _setup(services: Services, seed: int, n_ref: int, n_cur: int) -> datetime:
    rng = np.random.default_rng(seed)
    model = make_model(services, "fraud", NUMERIC, CATEGORICAL)
    set_reference(services, model, *_columns(rng, n_ref, drifted=False))
    end = now()
    insert_predictions(services, model, spread(end, n_cur, 20, rng), *_columns(rng, n_cur, True))
    return end


@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize(
    ("n_ref", "n_cur", "path", "numeric_method"),
    [
        (800, 1500, "exact", "ks"),
        (800, 1500, "rollup", "ks"),
        (4000, 3000, "exact", "wasserstein"),
        (4000, 3000, "rollup", "wasserstein"),
    ],
)
def test_injected_drift_is_detected_and_stable_columns_are_not(
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    n_ref: int,
    n_cur: int,
    path: str,
    numeric_method: str,
) -> None:
    if path == "rollup":
        monkeypatch.setattr(drift_window, "EXACT_MAX_ROWS", 0)
    end = _setup(services, seed, n_ref, n_cur)
    ev = evaluate_drift(
        services.context, services.models.require("fraud"), window("24h", end), now=end
    )
    (version,) = ev.versions
    by_name = {f.name: f for f in version.features}
    assert {f.name for f in version.drifted} == DRIFTED
    assert by_name["shift"].method == numeric_method
    assert by_name["shift"].path == (path if by_name["shift"].kind == "numeric" else "rollup")
    small = n_ref <= 1000
    assert by_name["few"].method == ("chisquare" if small else "jensenshannon")
    assert by_name["colour"].method == ("chisquare" if small else "jensenshannon")
    assert by_name["flag"].method == ("ztest" if small else "jensenshannon")
    assert all(f.psi is not None for f in version.features)
    assert version.drift_share == pytest.approx(4 / 8)
    assert version.dataset_drift is True


def test_the_minimum_sample_guard_gives_no_verdict(services: Services) -> None:
    end = _setup(services, 1, 2000, 60)
    results = run_drift(services.context, services.models.require("fraud"), window("24h", end))
    metrics = {r.metric for r in results}
    assert "feature_drift_detected" not in metrics
    assert "feature_drift_score" in metrics
    share = next(r for r in results if r.metric == "dataset_drift_share")
    assert share.value is None
    samples = {r.labels["metric"]: r.value for r in results if r.metric == "window_samples"}
    assert samples == {"drift": 60.0, "reference": 2000.0}


def _one(results: list[Result], metric: str, **labels: str) -> Result:
    (found,) = [r for r in results if r.metric == metric and dict(r.labels) == labels]
    return found


def test_result_rows_carry_the_contract_names_and_evidence(services: Services) -> None:
    end = _setup(services, 2, 800, 1200)
    results = run_drift(services.context, services.models.require("fraud"), window("24h", end))
    score = _one(results, "feature_drift_score", feature="shift", method="ks")
    assert score.details is not None
    assert {"threshold", "n_ref", "n_cur", "kind", "pvalue", "detected"} <= score.details.keys()
    assert score.details["n_ref"] == 800
    assert score.details["n_cur"] == 1200
    assert score.details["kind"] == "numeric"
    assert (_one(results, "feature_drift_pvalue", feature="shift", method="ks").value or 1) < 0.05
    assert _one(results, "feature_drift_detected", feature="shift", method="ks").value == 1.0
    assert _one(results, "feature_drift_detected", feature="flat", method="ks").value == 0.0
    assert (_one(results, "feature_drift_score", feature="shift", method="psi").value or 0) > 0.1
    assert _one(results, "dataset_drift_share").value == pytest.approx(0.5)
    assert {r.window for r in results} == {"24h"}
    assert {r.model_version for r in results} == {""}


def test_methods_thresholds_and_correction_come_from_the_model_config(
    services: Services,
) -> None:
    end = _setup(services, 3, 800, 1500)
    services.models.put(
        "fraud",
        task="classification",
        schema=None,
        prediction_kind=None,
        config={
            "drift": {
                "methods": {"steady": "psi", "calm": "jensenshannon"},
                "thresholds": {"shift": 1e-300},
                "correction": "bonferroni",
            }
        },
    )
    ev = evaluate_drift(
        services.context, services.models.require("fraud"), window("24h", end), now=end
    )
    by_name = {f.name: f for f in ev.versions[0].features}
    assert by_name["steady"].method == "psi"
    assert by_name["calm"].method == "jensenshannon"
    assert by_name["shift"].threshold == 1e-300
    assert by_name["shift"].detected is False
    adjusted = by_name["colour"].adjusted_pvalue
    assert adjusted is not None
    assert by_name["colour"].pvalue is not None
    assert adjusted >= by_name["colour"].pvalue


def test_prediction_and_label_drift(services: Services) -> None:
    rng = np.random.default_rng(4)
    model = make_model(services, "churn", ["x"])
    n = 1500
    set_reference(
        services,
        model,
        rng.normal(size=(n, 1)),
        prediction=rng.beta(2, 5, n).tolist(),
        label=rng.choice([0.0, 1.0], p=[0.8, 0.2], size=n).tolist(),
    )
    end = now()
    ids = [f"p{i}" for i in range(n)]
    insert_predictions(
        services,
        model,
        spread(end, n, 10, rng),
        rng.normal(size=(n, 1)),
        prediction=rng.beta(5, 2, n).tolist(),
        ids=ids,
    )
    services.ingest.labels(
        [
            {"model": "churn", "prediction_id": i, "label": float(v)}
            for i, v in zip(ids, rng.choice([0, 1], p=[0.4, 0.6], size=n), strict=True)
        ]
    )
    ev = evaluate_drift(
        services.context, services.models.require("churn"), window("24h", end), now=end
    )
    (version,) = ev.versions
    assert version.prediction is not None
    assert version.prediction.detected is True
    assert version.label is not None
    assert version.label.detected is True
    assert version.label.n_cur == n
    metrics = {
        r.metric
        for r in run_drift(services.context, services.models.require("churn"), window("24h", end))
    }
    assert {"prediction_drift_score", "label_drift_score"} <= metrics


def test_a_version_with_its_own_reference_is_compared_with_it(services: Services) -> None:
    rng = np.random.default_rng(6)
    model = make_model(services, "m", ["x"])
    set_reference(services, model, rng.normal(0, 1, (1200, 1)))
    set_reference(services, model, rng.normal(3, 1, (900, 1)), version="2")
    end = now()
    insert_predictions(
        services, model, spread(end, 800, 5, rng), rng.normal(3, 1, (800, 1)), version="1"
    )
    insert_predictions(
        services, model, spread(end, 700, 5, rng), rng.normal(3, 1, (700, 1)), version="2"
    )
    ev = evaluate_drift(services.context, services.models.require("m"), window("24h", end), now=end)
    versions = {v.model_version: v for v in ev.versions}
    assert set(versions) == {"1", "2"}
    assert versions["1"].reference_rows == 1200
    assert versions["1"].features[0].detected is True
    assert versions["2"].reference_rows == 900
    assert versions["2"].features[0].detected is False
    assert versions["2"].rows == 700


def test_a_new_reference_replaces_the_profile(services: Services) -> None:
    rng = np.random.default_rng(8)
    model = make_model(services, "m", ["x"])
    set_reference(services, model, rng.normal(0, 1, (1500, 1)))
    end = now()
    insert_predictions(services, model, spread(end, 900, 5, rng), rng.normal(2, 1, (900, 1)))
    first = evaluate_drift(services.context, model, window("24h", end), now=end)
    assert first.versions[0].features[0].detected is True
    set_reference(services, model, rng.normal(2, 1, (1100, 1)))
    second = evaluate_drift(services.context, model, window("24h", end), now=end)
    assert second.versions[0].reference_rows == 1100
    assert second.versions[0].features[0].detected is False
    with services.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM drift_profiles").scalar_one() == 1


def test_without_a_reference_there_is_nothing_to_compare(services: Services) -> None:
    rng = np.random.default_rng(10)
    model = make_model(services, "m", ["x"])
    end = now()
    insert_predictions(services, model, spread(end, 100, 5, rng), rng.normal(size=(100, 1)))
    assert run_drift(services.context, model, window("24h", end)) == []


def test_the_runner_writes_drift_results(services: Services) -> None:
    end = _setup(services, 5, 800, 1000) + timedelta(minutes=2)
    report = run_jobs(services, "fraud", "drift", now=end)
    assert report.failures == 0, report.table()
    with services.engine.connect() as conn:
        latest = read_latest(conn, metrics=["feature_drift_detected", "dataset_drift_share"])
    detected = {
        r.labels["feature"]
        for r in latest
        if r.metric == "feature_drift_detected" and r.value == 1.0
    }
    assert detected >= DRIFTED
    assert {r.window for r in latest} == {"1h", "24h"}
