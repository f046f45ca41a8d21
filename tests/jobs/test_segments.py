"""Drift per segment on a real PostgreSQL: drift confined to one country is found there and
nowhere else, stable data over many segments × features does not page (Benjamini-Hochberg),
small segments give no verdict, and 1000 distinct values make at most top-K + 1 segments."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.jobs.runner import run_jobs
from monitor.jobs.segments import evaluate_segments, run_segments
from monitor.services import Services
from monitor.storage.models import ModelRecord
from tests.jobs.drift_data import insert_predictions, make_model, now, set_reference, spread, window


def _rows(
    rng: np.random.Generator, countries: list[str], n: int, shift: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    country = rng.choice(countries, size=n)
    num = rng.normal(size=(n, 3))
    for value, by in (shift or {}).items():
        num[country == value, 0] += by
    plan = rng.choice(["free", "pro"], size=n)
    cat = np.column_stack([country, plan]).astype(object)
    return num, cat


def _model(
    services: Services,
    reference: tuple[np.ndarray, np.ndarray],
    current: tuple[np.ndarray, np.ndarray],
    *,
    name: str = "m",
    **config: object,
) -> ModelRecord:
    config.setdefault("segments", ["country"])
    model = make_model(services, name, ["amount", "age", "score"], ["country", "plan"], **config)
    set_reference(services, model, *reference)
    rng = np.random.default_rng(1)
    insert_predictions(services, model, spread(now(), len(current[0]), 20, rng), *current)
    return model


def test_drift_in_one_segment_is_found_there(services: Services) -> None:
    rng = np.random.default_rng(0)
    countries = ["DE", "FR", "IT", "ES"]
    model = _model(
        services,
        _rows(rng, countries, 8000),
        _rows(rng, countries, 8000, shift={"IT": 0.5}),
    )
    results = run_segments(services.context, model, window("24h", now()))
    detected = {
        (r.labels["segment"], r.labels["feature"]): r.value
        for r in results
        if r.metric == "segment_drift_detected"
    }
    assert detected[("country=IT", "amount")] == 1.0
    # the other 15 are stable: BH keeps false discoveries at 5% of those flagged
    assert sum(v == 1.0 for v in detected.values()) <= 2
    # every other segment × feature was judged (4 segments × 4 other features)
    assert len(detected) == 16
    assert {k[0] for k in detected} == {"country=DE", "country=FR", "country=IT", "country=ES"}
    rows = {r.labels["segment"]: r.value for r in results if r.metric == "segment_window_samples"}
    assert sum(v for v in rows.values() if v is not None) == 8000  # exact counts, no __other__
    by_segment = {s["segment"]: s for s in _endpoint_segments(services)}
    # (the runner's window ends at the start of the minute: a row may fall after it)
    assert 0 <= rows["country=IT"] - by_segment["country=IT"]["rows"] <= 20
    assert "amount" in {f["feature"] for f in by_segment["country=IT"]["drifted"]}
    missing = [r for r in results if r.metric == "segment_missing_ratio"]
    assert missing
    assert all(r.value == 0.0 for r in missing)


def _endpoint_segments(services: Services) -> list[dict[str, object]]:
    """GET /v1/models/m/drift after a run of the segments job."""
    assert run_jobs(services, "m", "segments").failures == 0
    with TestClient(create_app(services)) as client:
        body = client.get("/v1/models/m/drift", params={"window": "24h"}).json()
        metrics = client.get("/metrics").text
    drifted = [
        line
        for line in metrics.splitlines()
        if line.startswith("ml_segment_drift_detected{") and line.endswith(" 1.0")
    ]
    assert any('segment="country=IT"' in s and 'feature="amount"' in s for s in drifted)
    assert body["segments"] == body["versions"][0]["segments"]
    (version,) = body["versions"]
    segments: list[dict[str, object]] = version["segments"]
    return segments


def test_stable_data_over_many_segments_and_features_does_not_page(services: Services) -> None:
    countries = [f"c{i}" for i in range(10)]
    paging_runs = uncorrected = 0
    for seed in range(6):
        rng = np.random.default_rng(10 + seed)
        model = _model(
            services,
            _rows(rng, countries, 6000),
            _rows(rng, countries, 3000),
            name=f"s{seed}",
            segment_sample_rows=300,
        )
        (version,) = evaluate_segments(services.db, model, window("24h", now()))
        assert len(version.segments) == 10
        decided = [f for s in version.segments for f in s.features if f.detected is not None]
        assert len(decided) == 40
        paging_runs += any(f.detected for f in decided)
        uncorrected += sum(f.pvalue is not None and f.pvalue <= 0.05 for f in decided)
    # under no drift BH pages in at most 5% of runs; uncorrected, ~2 of 40 tests a run fire
    assert paging_runs <= 1
    assert uncorrected >= 4


def test_small_segments_give_no_verdict(services: Services) -> None:
    rng = np.random.default_rng(4)
    reference = _rows(rng, ["DE", "LU"], 4000)
    num, cat = _rows(rng, ["DE"], 2000)
    lu_num, lu_cat = _rows(rng, ["LU"], 30, shift={"LU": 3.0})
    model = _model(services, reference, (np.vstack([num, lu_num]), np.vstack([cat, lu_cat])))
    (version,) = evaluate_segments(services.db, model, window("24h", now()))
    by_label = {s.label: s for s in version.segments}
    assert by_label["country=LU"].window_rows == 30
    assert all(f.detected is None for f in by_label["country=LU"].features)
    assert all(f.score is not None for f in by_label["country=LU"].features)
    assert all(f.detected is not None for f in by_label["country=DE"].features)


def test_a_thousand_distinct_values_make_top_k_plus_other(services: Services) -> None:
    rng = np.random.default_rng(6)
    countries = [f"v{i:04d}" for i in range(1000)]
    model = _model(
        services,
        _rows(rng, countries, 5000),
        _rows(rng, countries, 5000),
        segment_top_k=5,
    )
    results = run_segments(services.context, model, window("24h", now()))
    segments = {r.labels["segment"] for r in results}
    assert len(segments) == 6
    assert "country=__other__" in segments
    series = {(r.metric, frozenset(r.labels.items())) for r in results}
    # per segment: its row count, 4 features × (score, detected, missing) at most, and p-values
    assert len(series) <= 6 * (1 + 4 * 4)


def test_segments_must_be_declared_categorical_features(client: TestClient) -> None:
    features = [
        {"name": "amount", "kind": "numeric"},
        {"name": "country", "kind": "categorical"},
    ]
    ok = client.put("/v1/models/m", json={"features": features, "segments": ["country"]})
    assert ok.status_code == 201, ok.text
    # whether a segment is valid depends on the schema (the body's, else the stored one):
    # a conflict with the model's state, like a schema change, not a malformed body
    for segments, word in ((["amount"], "numeric"), (["planet"], "planet")):
        bad = client.put("/v1/models/m", json={"features": features, "segments": segments})
        assert bad.status_code == 409, bad.text
        assert word in bad.json()["error"]["message"]
    assert client.put("/v1/models/m", json={"segments": ["country"]}).status_code == 200
    bad = client.put("/v1/models/m", json={"segments": ["amount"]})
    assert bad.status_code == 409
    assert "'amount' is not a declared categorical feature" in bad.json()["error"]["message"]
    assert client.get("/v1/models/m").json()["config"]["segments"] == ["country"]  # unchanged
    fresh = client.put("/v1/models/new", json={"segments": ["country"]})
    assert fresh.status_code == 409  # no schema yet: nothing is declared
    assert client.put("/v1/models/m", json={"segments": ["country", "country"]}).status_code == 422
    assert client.get("/v1/models/new").status_code == 404  # and nothing was stored
    too_many = client.put("/v1/models/m", json={"segment_top_k": 1000})
    assert too_many.status_code == 422
