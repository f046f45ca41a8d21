"""The multivariate drift job on a real PostgreSQL: a correlation that flips sign (which no
univariate test sees) is caught by both methods and explained by the right features; stable
data at small n raises no alarm over several seeds; the results reach /metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from monitor.api.app import create_app
from monitor.jobs.multivariate import (
    DOMAIN_CLASSIFIER,
    PCA_RECONSTRUCTION,
    evaluate_multivariate,
    run_multivariate,
)
from monitor.jobs.runner import run_jobs
from monitor.services import Services
from monitor.storage import rowsample
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from tests.jobs.drift_data import insert_predictions, make_model, now, set_reference, spread, window

NAMES = ["a", "b", "c", "d"]


def _correlated(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    cov = np.eye(len(NAMES))
    cov[0, 1] = cov[1, 0] = rho
    return rng.multivariate_normal(np.zeros(len(NAMES)), cov, n)


def _model(
    services: Services,
    reference: np.ndarray,
    current: np.ndarray,
    *,
    cat_ref: np.ndarray | None = None,
    cat_cur: np.ndarray | None = None,
    name: str = "m",
    **config: object,
) -> ModelRecord:
    categorical = ["plan"] if cat_ref is not None else []
    model = make_model(services, name, NAMES, categorical, **config)
    set_reference(services, model, reference, cat_ref)
    end = now()
    rng = np.random.default_rng(0)
    insert_predictions(services, model, spread(end, len(current), 20, rng), current, cat_cur)
    return model


def _by_method(results: list[Result], metric: str) -> dict[str, Result]:
    return {r.labels["method"]: r for r in results if r.metric == metric}


def test_a_correlation_sign_flip_is_caught_and_explained(services: Services) -> None:
    rng = np.random.default_rng(1)
    reference, current = _correlated(rng, 3000, 0.8), _correlated(rng, 2000, -0.8)
    # every marginal is N(0, 1) on both sides: no univariate test sees a thing
    assert min(stats.ks_2samp(reference[:, j], current[:, j]).pvalue for j in range(4)) > 0.05
    model = _model(services, reference, current)
    results = run_multivariate(services.context, model, window("24h", now()))
    detected = _by_method(results, "multivariate_drift_detected")
    assert {m: r.value for m, r in detected.items()} == {
        DOMAIN_CLASSIFIER: 1.0,
        PCA_RECONSTRUCTION: 1.0,
    }
    score = _by_method(results, "multivariate_drift_score")
    assert score[DOMAIN_CLASSIFIER].value is not None
    assert score[DOMAIN_CLASSIFIER].value > 0.75
    details = score[DOMAIN_CLASSIFIER].details or {}
    top = [f["feature"] for f in details["top_features"]]
    assert set(top[:2]) == {"a", "b"}
    pca = score[PCA_RECONSTRUCTION]
    assert pca.value is not None
    assert pca.value > (pca.details or {})["upper"]
    (samples,) = [r for r in results if r.metric == "window_samples"]
    assert samples.labels == {"metric": "multivariate"}
    assert samples.value == 2000


def test_stable_data_at_small_n_raises_no_alarm(services: Services) -> None:
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        model = _model(
            services, _correlated(rng, 400, 0.8), _correlated(rng, 120, 0.8), name=f"s{seed}"
        )
        (version,) = evaluate_multivariate(services.db, model, window("24h", now()))
        assert version.sampled_window == 120
        for method in version.methods:
            assert method.detected is False, (seed, method)
        domain = next(m for m in version.methods if m.method == DOMAIN_CLASSIFIER)
        assert domain.threshold > 0.6  # 0.5 + 4 sd of the null AUC at 120 + 120 rows


def test_a_categorical_shift_is_caught_through_its_categories(services: Services) -> None:
    rng = np.random.default_rng(5)
    ref_plan = rng.choice(["free", "pro", "team"], size=(1500, 1), p=[0.6, 0.3, 0.1])
    cur_plan = rng.choice(["free", "pro", "team"], size=(1500, 1), p=[0.2, 0.3, 0.5])
    model = _model(
        services,
        _correlated(rng, 1500, 0.0),
        _correlated(rng, 1500, 0.0),
        cat_ref=ref_plan.astype(object),
        cat_cur=cur_plan.astype(object),
    )
    (version,) = evaluate_multivariate(services.db, model, window("24h", now()))
    domain = next(m for m in version.methods if m.method == DOMAIN_CLASSIFIER)
    assert domain.detected is True
    assert domain.details["top_features"][0]["feature"] == "plan"


def test_the_sample_is_bounded_and_below_min_samples_there_is_no_verdict(
    services: Services,
) -> None:
    rng = np.random.default_rng(7)
    model = _model(
        services,
        _correlated(rng, 3000, 0.5),
        _correlated(rng, 3000, 0.5),
        multivariate={"sample_rows": 500},
    )
    (version,) = evaluate_multivariate(services.db, model, window("24h", now()))
    assert (version.sampled_window, version.sampled_reference) == (500, 500)
    assert (version.window_rows, version.reference_rows) == (3000, 3000)
    small = _model(services, _correlated(rng, 3000, 0.5), _correlated(rng, 50, 0.5), name="small")
    (version,) = evaluate_multivariate(services.db, small, window("24h", now()))
    assert version.methods == ()  # 50 rows < drift.min_samples (100)
    results = run_multivariate(services.context, small, window("24h", now()))
    assert [r.metric for r in results] == ["window_samples"]


def test_disabled_or_without_reference_it_computes_nothing(services: Services) -> None:
    rng = np.random.default_rng(8)
    off = _model(
        services,
        _correlated(rng, 500, 0.5),
        _correlated(rng, 500, -0.5),
        multivariate={"enabled": False},
    )
    assert run_multivariate(services.context, off, window("24h", now())) == []
    bare = make_model(services, "bare", NAMES)
    end = now()
    insert_predictions(services, bare, spread(end, 300, 2, rng), _correlated(rng, 300, 0.5))
    assert run_multivariate(services.context, bare, window("24h", now())) == []


def test_the_runner_writes_it_and_metrics_show_it(services: Services) -> None:
    rng = np.random.default_rng(9)
    _model(services, _correlated(rng, 2000, 0.8), _correlated(rng, 1000, -0.8))
    report = run_jobs(services, "m", "multivariate")
    assert report.failures == 0
    with TestClient(create_app(services)) as client:
        body = client.get("/metrics").text
    line = next(
        s
        for s in body.splitlines()
        if s.startswith("ml_multivariate_drift_detected{") and DOMAIN_CLASSIFIER in s
    )
    assert 'model="m"' in line
    assert 'window="24h"' in line
    assert line.endswith(" 1.0")
    assert "top_features" not in body  # the explanation is in the results' details, not labels


def test_the_drift_endpoint_shows_scores_and_top_features(
    client: TestClient, services: Services
) -> None:
    rng = np.random.default_rng(2)
    _model(services, _correlated(rng, 2000, 0.8), _correlated(rng, 1500, -0.8))
    assert run_jobs(services, "m", "multivariate").failures == 0
    body = client.get("/v1/models/m/drift", params={"window": "24h"}).json()
    domain = body["multivariate"][DOMAIN_CLASSIFIER]
    assert domain["detected"] is True
    assert domain["score"] > domain["threshold"]
    assert {f["feature"] for f in domain["top_features"][:2]} == {"a", "b"}
    assert body["multivariate"][PCA_RECONSTRUCTION]["detected"] is True


def test_the_reference_sample_is_read_once_while_its_set_is_active(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(5)
    model = _model(services, rng.normal(size=(300, 4)), rng.normal(size=(300, 4)))
    reads: list[int] = []
    real = rowsample.reference_sample

    def counted(*args: Any) -> Any:
        reads.append(args[1].reference_id)
        return real(*args)

    monkeypatch.setattr(rowsample, "reference_sample", counted)
    first = evaluate_multivariate(services.db, model, window("24h", now()))
    again = evaluate_multivariate(services.db, model, window("24h", now()))
    assert len(reads) == 1
    assert [m.score for m in first[0].methods] == [m.score for m in again[0].methods]
    # a new reference set is a new sample
    new = set_reference(services, model, rng.normal(size=(300, 4)))
    evaluate_multivariate(services.db, model, window("24h", now()))
    assert reads == [reads[0], new]
