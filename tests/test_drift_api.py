"""GET /v1/models/{model}/drift: the latest drift results of a window, in the SPEC error format
for unknown models and malformed windows."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from monitor.jobs.runner import run_jobs
from monitor.services import Services
from tests.jobs.drift_data import insert_predictions, make_model, now, set_reference, spread


def _drifting_model(services: Services) -> None:
    rng = np.random.default_rng(21)
    model = make_model(services, "fraud", ["amount", "age"], ["country"])
    n = 900
    set_reference(
        services,
        model,
        np.column_stack([rng.normal(size=n), rng.normal(40, 10, n)]),
        rng.choice(["DE", "FR"], size=(n, 1)).astype(object),
        prediction=rng.uniform(size=n).tolist(),
    )
    end = now()
    insert_predictions(
        services,
        model,
        spread(end, n, 10, rng),
        np.column_stack([rng.normal(1.0, 1.0, n), rng.normal(40, 10, n)]),
        rng.choice(["DE", "FR"], size=(n, 1)).astype(object),
        prediction=rng.uniform(size=n).tolist(),
    )
    report = run_jobs(services, "fraud", "drift", now=end + timedelta(minutes=1))
    assert report.failures == 0, report.table()


def test_drift_answers_the_latest_results_per_feature(
    client: TestClient, services: Services
) -> None:
    _drifting_model(services)
    r = client.get("/v1/models/fraud/drift", params={"window": "24h"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "fraud"
    assert body["window"] == "24h"
    assert body["window_end"] is not None
    assert body["dataset_drift_share"] == pytest.approx(1 / 3)
    features = {f["feature"]: f for f in body["features"]}
    assert set(features) == {"amount", "age", "country"}
    amount = features["amount"]
    assert amount["method"] == "ks"
    assert amount["detected"] is True
    assert amount["pvalue"] < 0.05
    assert amount["threshold"] == 0.05
    assert amount["n_ref"] == 900
    assert amount["n_cur"] == 900
    assert amount["psi"] > 0.1
    assert features["age"]["detected"] is False
    assert features["country"]["method"] == "ztest"
    (version,) = body["versions"]
    assert version["model_version"] == ""
    assert version["rows"] == 900
    assert version["reference_rows"] == 900
    assert version["prediction"]["method"] == "ks"


def test_drift_filters_by_version(client: TestClient, services: Services) -> None:
    _drifting_model(services)
    body = client.get("/v1/models/fraud/drift", params={"version": "9.9"}).json()
    assert body["versions"] == []
    assert body["window_end"] is None


def test_unknown_model_is_404_and_bad_window_is_422(client: TestClient, services: Services) -> None:
    r = client.get("/v1/models/nope/drift")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    make_model(services, "known", ["x"])
    for bad in ("24", "1y", "0h", "h"):
        r = client.get("/v1/models/known/drift", params={"window": bad})
        assert r.status_code == 422, bad
        assert r.json()["error"]["code"] == "validation_failed"


def test_a_window_the_model_does_not_compute_is_404_naming_its_windows(
    client: TestClient, services: Services
) -> None:
    _drifting_model(services)
    r = client.get("/v1/models/fraud/drift", params={"window": "7d"})
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert error["code"] == "not_found"
    assert "'7d'" in error["message"]
    assert "1h, 24h" in error["message"]
    assert client.get("/v1/models/fraud/drift", params={"window": "1h"}).status_code == 200


def test_drift_says_when_the_reference_has_no_predictions(
    client: TestClient, services: Services
) -> None:
    rng = np.random.default_rng(5)
    model = make_model(services, "eta", ["km"])
    set_reference(services, model, rng.normal(size=(300, 1)))  # no prediction column
    end = now()
    insert_predictions(
        services,
        model,
        spread(end, 300, 10, rng),
        rng.normal(size=(300, 1)),
        prediction=[1.0] * 300,
    )
    assert run_jobs(services, "eta", "drift", now=end + timedelta(minutes=1)).failures == 0
    body = client.get("/v1/models/eta/drift", params={"window": "24h"}).json()
    assert body["versions"][0]["prediction"] is None
    (note,) = body["notes"]
    assert note.startswith("no reference predictions for model 'eta'")


def test_drift_says_when_no_reference_is_set(client: TestClient, services: Services) -> None:
    make_model(services, "bare", ["x"])
    body = client.get("/v1/models/bare/drift", params={"window": "1h"}).json()
    assert body["versions"] == []
    (note,) = body["notes"]
    assert note.startswith("no reference set for model 'bare'")


def test_drift_has_no_notes_when_nothing_is_missing(client: TestClient, services: Services) -> None:
    _drifting_model(services)
    assert client.get("/v1/models/fraud/drift").json()["notes"] == []
