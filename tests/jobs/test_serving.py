"""The serving job against known answers: quantiles, throughput, errors, loads, canaries."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from monitor.catalogue import SLO_OBJECTIVE
from monitor.jobs.runner import run_jobs
from monitor.services import Services
from monitor.stats import binned, selection
from monitor.storage.results import read_latest
from tests.jobs.helpers import at, configure, latest, predictions, window_end

PROD_LATENCY = [10.0 * (i + 1) for i in range(10)]  # 10 .. 100 ms
CANARY_LATENCY = [200.0, 210.0, 220.0, 230.0, 240.0]
PROD_SCORES = [0.05 + 0.1 * i for i in range(10)]
CANARY_SCORES = [0.55, 0.65, 0.75, 0.85, 0.95]


def _traffic(services: Services, client: TestClient) -> None:
    end = window_end()
    prod = [
        {
            "prediction_id": f"p{i}",
            "model_version": "1.0",
            "timestamp": at(end, 10 + i),
            "latency_ms": lat,
            "prediction": PROD_SCORES[i],
            "status": "error" if i in (3, 7) else "ok",
        }
        for i, lat in enumerate(PROD_LATENCY)
    ]
    canary = [
        {
            "prediction_id": f"c{i}",
            "model_version": "2.0",
            "variant": "canary",
            "timestamp": at(end, 5 + i),
            "latency_ms": lat,
            "prediction": CANARY_SCORES[i],
            "status": "timeout" if i < 2 else "ok",
        }
        for i, lat in enumerate(CANARY_LATENCY)
    ]
    # outside the 1h window, inside 24h: counts for 24h only
    old = [
        {
            "prediction_id": "old",
            "model_version": "0.9",
            "timestamp": at(end, 180),
            "latency_ms": 1000.0,
            "prediction": 0.5,
        }
    ]
    predictions(services, "fraud", [*prod, *canary, *old])
    for version, minutes, seconds in (("1.0", 120, 99.0), ("1.0", 30, 12.5), ("0.9", 200, 7.0)):
        r = client.post(
            "/v1/events",
            json={
                "model": "fraud",
                "event": "model_loaded",
                "model_version": version,
                "timestamp": at(end, minutes),
                "load_seconds": seconds,
            },
        )
        assert r.status_code == 201, r.text


def test_serving_figures_match_hand_computed_answers(
    services: Services, client: TestClient
) -> None:
    _traffic(services, client)
    report = run_jobs(services, "fraud", "serving", now=window_end())
    assert report.failures == 0, report.table()
    got = latest(services)

    def value(name: str, version: str, window: str = "1h", /, **lbl: str) -> float | None:
        return got[(name, version, window, frozenset(lbl.items()))]

    prod, canary = {"variant": "production"}, {"variant": "canary"}
    assert value("window_samples", "1.0", metric="serving", **prod) == 10
    assert value("window_samples", "2.0", metric="serving", **canary) == 5
    assert value("predictions_per_second", "1.0", **prod) == pytest.approx(10 / 3600)
    assert value("prediction_error_ratio", "1.0", **prod) == pytest.approx(0.2)
    assert value("prediction_error_ratio", "2.0", **canary) == pytest.approx(0.4)
    # percentile_cont interpolates linearly, as numpy's default quantile
    for q in (0.5, 0.95, 0.99):
        expected = float(np.quantile(PROD_LATENCY, q)) / 1000
        assert value("prediction_latency_seconds", "1.0", quantile=str(q), **prod) == (
            pytest.approx(expected)
        )
    assert value("prediction_latency_seconds", "1.0", quantile="0.95", **prod) == (
        pytest.approx(0.0955)
    )
    # canary against production
    assert value("variant_latency_p95_delta_seconds", "2.0", **canary) == pytest.approx(
        (238.0 - 95.5) / 1000
    )
    assert value("variant_error_ratio_delta", "2.0", **canary) == pytest.approx(0.2)
    edges = np.unique(np.quantile(PROD_SCORES, np.arange(1, 10) / 10))
    ks = selection.METHODS["ks"].binned(
        binned.rollup(PROD_SCORES, edges), binned.rollup(CANARY_SCORES, edges)
    )
    assert value("variant_prediction_drift_score", "2.0", method="ks", **canary) == (
        pytest.approx(ks.statistic)
    )
    assert ("variant_error_ratio_delta", "1.0", "1h", frozenset(prod.items())) not in got
    # the latest load of a version that served in the window; 0.9 only in 24h (loaded then)
    assert value("model_load_seconds", "1.0", **prod) == 12.5
    assert ("model_load_seconds", "0.9", "1h", frozenset(prod.items())) not in got
    assert value("model_load_seconds", "0.9", "24h", **prod) == 7.0
    assert value("window_samples", "0.9", "24h", metric="serving", **prod) == 1
    assert value("predictions_per_second", "1.0", "24h", **prod) == pytest.approx(10 / 86400)


def test_categorical_canary_predictions_are_compared_by_category(
    services: Services,
) -> None:
    end = window_end()
    prod = [
        {"timestamp": at(end, 5), "prediction": "approve" if i % 4 else "deny"} for i in range(40)
    ]
    shadow = [
        {"timestamp": at(end, 5), "prediction": "deny" if i % 2 else "approve", "variant": "shadow"}
        for i in range(20)
    ]
    predictions(services, "loans", prod + shadow)
    report = run_jobs(services, "loans", "serving", now=end)
    assert report.failures == 0, report.table()
    got = latest(services, ["variant_prediction_drift_score"])
    ((key, score),) = ((k, v) for k, v in got.items() if k[2] == "1h")
    assert dict(key[3]) == {"variant": "shadow", "method": "ztest"}
    ref, cur = binned.Rollup(np.array([30.0, 10.0])), binned.Rollup(np.array([10.0, 10.0]))
    assert score == pytest.approx(binned.z_test(ref, cur).statistic)


def test_a_window_without_traffic_writes_nothing(services: Services) -> None:
    predictions(services, "idle", [{"timestamp": at(window_end(), 600)}])
    report = run_jobs(services, "idle", "serving", now=window_end())
    assert report.outcomes[0].ok
    assert all(k[2] == "24h" for k in latest(services))


def test_each_model_exports_its_own_slo_objectives(services: Services, client: TestClient) -> None:
    configure(services, "fraud")
    configure(services, "chat", slo={"availability_target": 0.99, "latency_target": 0.95})
    for model in ("fraud", "chat"):
        predictions(services, model, [{"timestamp": at(window_end(), 5), "latency_ms": 20.0}])
        assert run_jobs(services, model, "serving", now=window_end()).failures == 0
    with services.engine.connect() as conn:
        rows = read_latest(conn, metrics=[SLO_OBJECTIVE.result])
    got = {(r.model, r.model_version, r.window, r.labels["slo"]): r.value for r in rows}
    assert got == {
        (model, "", window, slo): target
        for model, targets in (
            ("fraud", {"availability": 0.999, "latency": 0.99}),
            ("chat", {"availability": 0.99, "latency": 0.95}),
        )
        for window in ("1h", "24h")
        for slo, target in targets.items()
    }
    body = client.get("/metrics").text
    exported = 'ml_slo_objective{model="chat",model_version="",window="1h",slo="availability"}'
    assert f"{exported} 0.99\n" in body


def test_a_drifted_canary_gets_a_verdict_once_both_sides_have_enough_rows(
    services: Services,
) -> None:
    """Production scores around 0.2, the canary's around 0.7, the shadow's like production's:
    on 200/150/150 rows (over the minimum of 100) the canary drifted, the shadow did not; the
    verdict uses the method's own threshold (KS p-value <= 0.05 on a small reference)."""
    end = window_end()
    rng = np.random.default_rng(7)
    rows = [
        {"timestamp": at(end, 5), "model_version": "1.0", "prediction": float(v)}
        for v in rng.normal(0.2, 0.05, 200)
    ]
    rows += [
        {"timestamp": at(end, 5), "model_version": "2.0", "variant": "canary", "prediction": v}
        for v in rng.normal(0.7, 0.05, 150).tolist()
    ]
    rows += [
        {"timestamp": at(end, 5), "model_version": "2.1", "variant": "shadow", "prediction": v}
        for v in rng.normal(0.2, 0.05, 150).tolist()
    ]
    predictions(services, "fraud", rows)
    assert run_jobs(services, "fraud", "serving", now=end).failures == 0
    got = latest(services, ["variant_prediction_drift_detected", "variant_prediction_drift_score"])
    detected = {
        (k[1], dict(k[3])["variant"], dict(k[3])["method"]): v
        for k, v in got.items()
        if k[0] == "variant_prediction_drift_detected" and k[2] == "1h"
    }
    assert detected == {("2.0", "canary", "ks"): 1.0, ("2.1", "shadow", "ks"): 0.0}


def test_small_variants_get_a_drift_score_but_no_verdict(
    services: Services, client: TestClient
) -> None:
    _traffic(services, client)
    assert run_jobs(services, "fraud", "serving", now=window_end()).failures == 0
    assert latest(services, ["variant_prediction_drift_detected"]) == {}
    assert latest(services, ["variant_prediction_drift_score"]) != {}


def test_the_latest_deployment_events_of_the_last_week_are_exported(
    services: Services, client: TestClient
) -> None:
    end = window_end()
    predictions(services, "fraud", [{"timestamp": at(end, 5), "model_version": "2.0"}])
    posted = [
        ("deployed", "2.0", None, 300),
        ("deployed", "2.0", None, 90),  # the later deploy wins
        ("rolled_back", "2.0", None, 30),
        ("model_loaded", "1.0", None, 20),
        ("deployed", "2.1", "canary", 10),
        ("deployed", "0.9", None, 8 * 24 * 60),  # older than a week
    ]
    for event, version, variant, minutes in posted:
        body = {"model": "fraud", "event": event, "model_version": version}
        body |= {"timestamp": at(end, minutes), "load_seconds": 5.0}
        if variant:
            body["variant"] = variant
        r = client.post("/v1/events", json=body)
        assert r.status_code == 201, r.text
    assert run_jobs(services, "fraud", "serving", now=end).failures == 0
    got = {
        (k[1], dict(k[3])["variant"], dict(k[3])["event"]): v
        for k, v in latest(services, ["deployment_event_timestamp_seconds"]).items()
        if k[2] == "1h"
    }

    def ts(minutes: int) -> float:
        return (end - timedelta(minutes=minutes)).timestamp()

    assert got == {
        ("2.0", "production", "deployed"): ts(90),
        ("2.0", "production", "rolled_back"): ts(30),
        ("1.0", "production", "model_loaded"): ts(20),
        ("2.1", "canary", "deployed"): ts(10),
    }
    body = client.get("/metrics").text
    assert 'ml_deployment_event_timestamp_seconds{model="fraud",model_version="2.0",' in body
