"""GET /: the status page renders from stored results; no models and bad windows are handled."""

from __future__ import annotations

from fastapi.testclient import TestClient

from monitor.services import Services
from monitor.status_page import sparkline
from tests.api.helpers import record


def test_without_models_the_page_says_how_to_start(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "No models yet" in r.text
    assert "<script" not in r.text  # server-rendered, nothing to run or fetch


def test_a_model_with_serving_results_is_listed_with_its_figures(
    client: TestClient, services: Services
) -> None:
    client.post("/v1/predictions", json={"predictions": [record(i) for i in range(20)]})
    assert client.post("/v1/jobs/run", params={"job": "serving"}).status_code == 200
    page = client.get("/", params={"window": "1h"}).text
    assert 'id="model-fraud"' in page
    assert 'data-metric="ml_prediction_latency_seconds"' in page
    assert 'href="/v1/models/fraud/drift?window=1h"' in page
    assert "<svg" in page
    assert "window 7d is not computed" in client.get("/", params={"window": "7d"}).text


def test_a_malformed_window_is_422(client: TestClient) -> None:
    assert client.get("/", params={"window": "soon"}).status_code == 422


def test_sparkline_scales_points_into_the_box() -> None:
    svg = sparkline([1.0, 3.0, 2.0], width=90, height=20)
    assert 'points="0.0,18.0 45.0,2.0 90.0,10.0"' in svg
    assert "<circle" in sparkline([5.0])
    assert sparkline([]) == ""
