"""Labels, model configuration, reference data sets, events and health endpoints."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from monitor.services import Services
from tests.api.helpers import count, record


def test_labels_before_and_after_their_predictions(client: TestClient, services: Services) -> None:
    assert client.put("/v1/models/fraud", json={"task": "classification"}).status_code < 300
    early = client.post(
        "/v1/labels", json={"labels": [{"prediction_id": "p-1", "model": "fraud", "label": 1}]}
    )
    assert early.status_code == 200, early.text
    client.post("/v1/predictions", json={"predictions": [record(1), record(2)]})
    late = client.post(
        "/v1/labels",
        json={
            "labels": [
                {"prediction_id": "p-2", "model": "fraud", "label": False},
                {"prediction_id": "p-1", "model": "fraud", "label": 0},
            ]
        },
    )  # a correction
    assert late.json() == {"received": 2, "stored": 2, "duplicates": 0}
    with services.engine.connect() as conn:
        joined = conn.execute(
            text(
                "SELECT p.prediction_id, l.label FROM predictions p JOIN labels l "
                "USING (model_id, prediction_id) ORDER BY 1"
            )
        ).all()
    assert [tuple(r) for r in joined] == [("p-1", 0.0), ("p-2", 0.0)]


def test_text_labels(client: TestClient, services: Services) -> None:
    assert client.put("/v1/models/intent", json={"task": "classification"}).status_code < 300
    r = client.post(
        "/v1/labels",
        json={
            "labels": [
                {
                    "prediction_id": "x",
                    "model": "intent",
                    "label": "refund",
                    "timestamp": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
                }
            ]
        },
    )
    assert r.status_code == 200
    assert count(services.engine, "labels", "label_text = 'refund'") == 1


def test_labels_for_an_unknown_model_are_404_and_create_nothing(
    client: TestClient, services: Services
) -> None:
    client.post("/v1/predictions", json={"predictions": [record(1)]})
    r = client.post(
        "/v1/labels",
        json={
            "labels": [
                {"prediction_id": "p-1", "model": "fraud", "label": 1},
                {"prediction_id": "p-1", "model": "fruad", "label": 1},
            ]
        },
    )
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    assert "'fruad'" in r.json()["error"]["message"]
    assert count(services.engine, "labels") == 0
    assert count(services.engine, "models") == 1


def test_bad_labels_reject_the_batch(client: TestClient, services: Services) -> None:
    r = client.post(
        "/v1/labels",
        json={
            "labels": [
                {"prediction_id": "a", "model": "m", "label": 1},
                {"model": "m", "label": 1},
                {"prediction_id": "c", "model": "m"},
                {"prediction_id": "d", "model": "bad name", "label": 1},
            ]
        },
    )
    assert r.status_code == 422
    fields = [(d["index"], d["field"]) for d in r.json()["error"]["details"]]
    assert fields == [(1, "prediction_id"), (2, "label"), (3, "model")]
    assert count(services.engine, "labels") == 0
    assert count(services.engine, "models") == 0


def test_put_and_get_model(client: TestClient) -> None:
    config = {
        "task": "regression",
        "features": [
            {"name": "distance", "kind": "numeric"},
            {"name": "city", "kind": "categorical"},
        ],
        "windows": ["1h", "7d"],
        "cost": {"currency": "EUR", "gpu_hour_price": 2.5, "gpus": 1},
        "drift": {"methods": {"distance": "psi"}, "thresholds": {"distance": 0.2}},
    }
    created = client.put("/v1/models/eta", json=config)
    assert created.status_code == 201, created.text
    again = client.put("/v1/models/eta", json=config)
    assert again.status_code == 200
    got = client.get("/v1/models/eta").json()
    assert got["task"] == "regression"
    assert got["features"] == config["features"]
    assert got["config"]["cost"]["currency"] == "EUR"
    assert got["config"]["drift"]["thresholds"] == {"distance": 0.2}
    listed = client.get("/v1/models").json()["models"]
    assert [m["name"] for m in listed] == ["eta"]


def test_schema_is_append_only(client: TestClient) -> None:
    client.put("/v1/models/m", json={"features": [{"name": "a", "kind": "numeric"}]})
    grown = client.put(
        "/v1/models/m",
        json={"features": [{"name": "a", "kind": "numeric"}, {"name": "b", "kind": "categorical"}]},
    )
    assert grown.status_code == 200
    changed = client.put("/v1/models/m", json={"features": [{"name": "a", "kind": "categorical"}]})
    assert changed.status_code == 409
    assert "a" in changed.json()["error"]["message"]


@pytest.mark.parametrize(
    "config",
    [
        {"task": "astrology"},
        {"windows": ["yesterday"]},
        {"features": [{"name": "a;drop", "kind": "numeric"}]},
        {"cost": {"currency": "euros"}},
        {"unexpected": 1},
        {"performance": {"min": {"accuracy": 1.5}}},
        {"performance": {"min": {"mae": 0.5}}},  # an error metric has a maximum, not a minimum
        {"performance": {"min": {"accuracy": "0.9"}}},
        {"performance": {"max": {"rmse": -1}}},
        {"performance": {"sample_rows": 10}},
        {"performance": {"estimate": "yes"}},
    ],
)
def test_bad_model_config_is_422(client: TestClient, config: dict[str, object]) -> None:
    r = client.put("/v1/models/m", json=config)
    assert r.status_code == 422
    assert r.json()["error"]["details"]


def test_performance_bounds_are_stored_and_a_bad_one_is_named(client: TestClient) -> None:
    config = {"performance": {"min": {"accuracy": 0.9, "f1": 0.7}, "max": {"mae": 2}}}
    assert client.put("/v1/models/m", json=config).status_code == 201
    stored = client.get("/v1/models/m").json()["config"]["performance"]
    assert stored == {**config["performance"], "estimate": True, "sample_rows": 50_000}
    bad = client.put("/v1/models/m", json={"performance": {"min": {"acuracy": 0.9}}})
    assert bad.status_code == 422
    fields = [d["field"] for d in bad.json()["error"]["details"]]
    assert any("performance.min.acuracy" in f for f in fields), fields
    assert client.get("/v1/models/m").json()["config"]["performance"] == stored  # unchanged


def test_unknown_model_is_404(client: TestClient) -> None:
    r = client.get("/v1/models/nope")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_bad_model_name_in_path_is_422(client: TestClient) -> None:
    assert client.put("/v1/models/bad%20name", json={}).status_code == 422


def _csv(rows: int, shift: float = 0.0) -> bytes:
    lines = ["amount,country,prediction,label"]
    lines += [f"{i + shift},{'DE' if i % 3 else 'FR'},0.{i % 10},{i % 2}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_reference_from_csv(client: TestClient, services: Services) -> None:
    r = client.post(
        "/v1/models/fraud/reference", content=_csv(50), headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 50
    model = client.get("/v1/models/fraud").json()
    assert model["features"] == [
        {"name": "amount", "kind": "numeric"},
        {"name": "country", "kind": "categorical"},
    ]
    assert model["reference"]["row_count"] == 50
    assert count(services.engine, "reference_rows", "label IS NOT NULL") == 50


def test_new_reference_replaces_the_active_one(client: TestClient, services: Services) -> None:
    for rows in (10, 20):
        client.post(
            "/v1/models/fraud/reference", content=_csv(rows), headers={"Content-Type": "text/csv"}
        )
    assert count(services.engine, "reference_sets", "active") == 1
    assert count(services.engine, "reference_sets", "active AND row_count = 20") == 1


def test_reference_from_parquet_and_ndjson(client: TestClient, services: Services) -> None:
    table = pa.table({"amount": [1.0, 2.0, None], "country": ["DE", "FR", "DE"]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    r = client.post(
        "/v1/models/p/reference?version=2.0",
        content=buf.getvalue(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["model_version"] == "2.0"
    nd = b'{"features": {"amount": 3.0, "country": "FR"}, "prediction": 1}\n'
    r = client.post(
        "/v1/models/p/reference", content=nd, headers={"Content-Type": "application/x-ndjson"}
    )
    assert r.status_code == 201, r.text
    assert count(services.engine, "reference_sets", "active") == 2


def test_reference_with_bad_rows_stores_nothing(client: TestClient, services: Services) -> None:
    client.put("/v1/models/m", json={"features": [{"name": "amount", "kind": "numeric"}]})
    body = b"amount\n1.0\nlots\n3.0\n"
    r = client.post("/v1/models/m/reference", content=body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 422, r.text
    assert count(services.engine, "reference_rows") == 0
    assert count(services.engine, "reference_sets") == 0


def test_reference_wrong_content_type_is_415(client: TestClient) -> None:
    r = client.post(
        "/v1/models/m/reference", content=b"<xml/>", headers={"Content-Type": "application/xml"}
    )
    assert r.status_code == 415


def test_reference_by_freezing_a_window(client: TestClient, services: Services) -> None:
    client.post("/v1/predictions", json={"predictions": [record(i) for i in range(8)]})
    client.post(
        "/v1/labels", json={"labels": [{"prediction_id": "p-1", "model": "fraud", "label": 1}]}
    )
    now = datetime.now(UTC)
    r = client.post(
        "/v1/models/fraud/reference",
        json={"from": (now - timedelta(hours=1)).isoformat(), "to": now.isoformat()},
    )
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 8
    assert r.json()["source"] == "window"
    assert count(services.engine, "reference_rows", "label = 1") == 1
    empty = client.post(
        "/v1/models/fraud/reference",
        json={"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"},
    )
    assert empty.status_code == 422
    backwards = client.post(
        "/v1/models/fraud/reference",
        json={"from": now.isoformat(), "to": (now - timedelta(hours=1)).isoformat()},
    )
    assert backwards.status_code == 422


def test_events(client: TestClient, services: Services) -> None:
    r = client.post(
        "/v1/events",
        json={
            "model": "fraud",
            "event": "model_loaded",
            "model_version": "3.2.0",
            "load_seconds": 12.5,
        },
    )
    assert r.status_code == 201, r.text
    client.post(
        "/v1/events",
        json={"model": "fraud", "event": "deployed", "model_version": "3.2.0", "variant": "canary"},
    )
    events = client.get("/v1/models/fraud").json()["events"]
    assert [e["kind"] for e in events][::-1] == ["model_loaded", "deployed"] or len(events) == 2
    assert count(services.engine, "events", "load_seconds = 12.5") == 1


@pytest.mark.parametrize(
    "event",
    [
        {"model": "fraud", "event": "exploded"},
        {"model": "fraud", "event": "model_loaded", "load_seconds": -1},
        {"event": "deployed"},
    ],
)
def test_bad_events_are_422(
    client: TestClient, services: Services, event: dict[str, object]
) -> None:
    r = client.post("/v1/events", json=event)
    assert r.status_code == 422
    assert count(services.engine, "events") == 0


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    spec = client.get("/openapi.json").json()
    assert "/v1/predictions" in spec["paths"]
    assert client.get("/docs").status_code == 200
    assert client.get("/nowhere").json()["error"]["code"] == "not_found"
