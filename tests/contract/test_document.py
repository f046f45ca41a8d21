"""What /openapi.json declares, checked directly (the fuzzing run checks the answers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from monitor.api.openapi import ERRORS
from tests.api.helpers import record


def document(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    return dict(answer.json())


def test_errors_are_declared_with_the_error_shape(client: TestClient) -> None:
    put = document(client)["paths"]["/v1/models/{model}"]["put"]
    assert set(put["responses"]) == {"200", "201", "400", "401", "409", "413", "415", "422", "503"}
    for status in ("400", "401", "409", "413", "415", "422", "503"):
        schema = put["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, status
    assert "Retry-After" in put["responses"]["503"]["headers"]
    assert put["security"] == [{"bearer": []}]
    assert "HTTPValidationError" not in document(client)["components"]["schemas"]


def test_every_operation_declares_503_but_liveness(client: TestClient) -> None:
    for path, operations in document(client)["paths"].items():
        for method, operation in operations.items():
            assert ("503" in operation["responses"]) == (path != "/healthz"), (method, path)


def test_name_and_window_patterns_are_in_the_document(client: TestClient) -> None:
    doc = document(client)
    drift = doc["paths"]["/v1/models/{model}/drift"]["get"]
    window = next(p for p in drift["parameters"] if p["name"] == "window")
    assert window["schema"]["pattern"] == "^([1-9][0-9]{0,4})([mhdw])$"
    event = doc["components"]["schemas"]["EventIn"]["properties"]
    assert event["model"]["pattern"].startswith("^[A-Za-z0-9]")
    windows = doc["components"]["schemas"]["ModelConfig"]["properties"]["windows"]
    assert windows["anyOf"][0]["items"]["pattern"] == window["schema"]["pattern"]


def test_a_schema_valid_window_is_not_refused_as_invalid(client: TestClient) -> None:
    client.post("/v1/predictions", json={"predictions": [record(0)]})
    assert client.get("/v1/models/fraud/drift", params={"window": "24h"}).status_code == 200
    assert client.get("/v1/models/fraud/drift", params={"window": "15m"}).status_code == 404
    refused = client.get("/v1/models/fraud/drift", params={"window": "1 h"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "validation_failed"


def test_an_undeclared_method_names_every_method_of_the_path(client: TestClient) -> None:
    for method in ("OPTIONS", "DELETE", "PATCH"):
        answer = client.request(method, "/v1/models/fraud")
        assert answer.status_code == 405, method
        assert answer.headers["Allow"] == "GET, HEAD, PUT", method
        assert answer.json()["error"]["code"] == "method_not_allowed"
    assert client.options("/v1/models").headers["Allow"] == "GET, HEAD"


def test_alertmanager_refuses_a_wrong_type_for_truncated_alerts(client: TestClient) -> None:
    for wrong in ("5", 1.5, True, -1, None):
        payload = {"version": "4", "status": "firing", "alerts": [], "truncatedAlerts": wrong}
        answer = client.post("/v1/alertmanager", json=payload)
        assert answer.status_code == 422, (wrong, answer.text)
        assert answer.json()["error"]["details"][0]["field"] == "truncatedAlerts"
    ok = {"version": "4", "status": "firing", "alerts": [], "truncatedAlerts": 3}
    assert client.post("/v1/alertmanager", json=ok).status_code == 200


def test_configuration_numbers_are_not_coerced(client: TestClient) -> None:
    for config in (
        {"drift": {"min_samples": "100"}},
        {"drift": {"min_samples": 1.5}},
        {"cost": {"replicas": True}},
        {"slo": {"latency_ms": "500"}},
    ):
        assert client.put("/v1/models/m", json=config).status_code == 422, config
    assert client.put("/v1/models/m", json={"drift": {"min_samples": 100.0}}).status_code == 201


def test_event_timestamps_are_iso_strings_not_numbers(client: TestClient) -> None:
    numeric = client.post("/v1/events", json={"model": "m", "event": "deployed", "timestamp": 0})
    assert numeric.status_code == 422
    assert numeric.json()["error"]["details"][0]["field"] == "timestamp"
    stamp = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    iso = {"model": "m", "event": "deployed", "timestamp": stamp}
    assert client.post("/v1/events", json=iso).status_code == 201


def test_every_operation_is_in_the_table_of_errors(client: TestClient) -> None:
    operations = {(m, p) for p, ops in document(client)["paths"].items() for m in ops}
    assert operations - set(ERRORS) == set(), "add the new route to monitor.api.openapi.ERRORS"
