"""POST /v1/integrations/kserve with the events KServe's logger and MLServer/Seldon send."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from monitor.api.app import create_app
from monitor.config import Settings
from monitor.services import Services, build_services
from tests.api.helpers import count, stored_nothing
from tests.integrations import fixtures as fx

URL = "/v1/integrations/kserve"


def send(client: TestClient, headers: dict[str, str], body: Any, query: str = "") -> Any:
    return client.post(URL + query, headers=headers, content=orjson.dumps(body))


def declare_iris(client: TestClient, model: str = "sklearn-iris") -> None:
    r = client.put(f"/v1/models/{model}", json={"input_names": fx.IRIS_INPUT_NAMES})
    assert r.status_code in (200, 201), r.text


def stored(services: Services) -> list[tuple[Any, ...]]:
    with services.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT prediction_id, num, prediction, status, variant, latency_ms, "
                "model_version FROM predictions ORDER BY prediction_id"
            )
        ).all()
    return [tuple(r) for r in rows]


def pending(services: Services) -> int:
    return count(services.engine, "integration_pending")


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def test_a_v1_request_and_its_response_become_one_prediction_per_row(
    client: TestClient, services: Services
) -> None:
    declare_iris(client)
    r = send(client, fx.kserve_headers("c1", "request"), fx.V1_IRIS_REQUEST)
    assert r.status_code == 200, r.text
    assert r.json()["pending"] == 1
    assert stored(services) == []
    r = send(client, fx.kserve_headers("c1", "response"), fx.V1_IRIS_RESPONSE)
    assert r.json() == {
        "received": 1,
        "stored": 2,
        "paired": 1,
        "pending": 0,
        "unpaired": 0,
        "duplicates": 0,
    }
    rows = stored(services)
    names = services.models.require("sklearn-iris").schema.numeric_names
    assert [(r[0], dict(zip(names, r[1], strict=True)), r[2], r[3], r[4]) for r in rows] == [
        (
            "c1:0",
            dict(zip(fx.IRIS_INPUT_NAMES, [6.8, 2.8, 4.8, 1.4], strict=False)),
            1.0,
            "ok",
            "production",
        ),
        (
            "c1:1",
            dict(zip(fx.IRIS_INPUT_NAMES, [6.0, 3.4, 4.5, 1.6], strict=False)),
            1.0,
            "ok",
            "production",
        ),
    ]
    assert pending(services) == 0
    sample = services.registry.get_sample_value
    assert sample("monitor_ingest_rows_total", {"kind": "kserve_events"}) == 2
    assert (
        sample(
            "ml_predictions_total", {"model": "sklearn-iris", "model_version": "", "status": "ok"}
        )
        == 2
    )


def test_the_response_may_arrive_first(client: TestClient, services: Services) -> None:
    declare_iris(client)
    assert (
        send(client, fx.kserve_headers("c2", "response"), fx.V2_IRIS_RESPONSE).json()["pending"]
        == 1
    )
    r = send(client, fx.kserve_headers("c2", "request"), fx.V2_IRIS_REQUEST)
    assert r.json()["stored"] == 2
    assert [row[2] for row in stored(services)] == [1.0, 1.0]


def test_redelivered_events_are_stored_once(client: TestClient, services: Services) -> None:
    declare_iris(client)
    for _ in range(2):
        send(client, fx.kserve_headers("c3", "request"), fx.V1_IRIS_REQUEST)
        send(client, fx.kserve_headers("c3", "response"), fx.V1_IRIS_RESPONSE)
    r = send(client, fx.kserve_headers("c3", "request"), fx.V1_IRIS_REQUEST)
    assert r.json()["duplicates"] == 1
    assert len(stored(services)) == 2
    assert pending(services) == 0
    sample = services.registry.get_sample_value
    assert sample("monitor_ingest_dropped_total", {"source": "kserve", "reason": "duplicate"})


def test_a_restart_between_the_halves_loses_nothing(
    settings: Settings, db_url: str, services: Services
) -> None:
    with TestClient(create_app(services)) as first:
        declare_iris(first)
        send(first, fx.kserve_headers("c4", "request"), fx.V1_IRIS_REQUEST)
    services.engine.dispose()
    again = build_services(settings, db_url, registry=CollectorRegistry())
    try:
        with TestClient(create_app(again)) as second:
            r = send(second, fx.kserve_headers("c4", "response"), fx.V1_IRIS_RESPONSE)
        assert r.json()["stored"] == 2
        assert len(stored(again)) == 2
    finally:
        again.engine.dispose()


def test_a_request_whose_response_never_comes_is_stored_after_the_wait(
    client: TestClient, services: Services
) -> None:
    declare_iris(client)
    send(client, fx.kserve_headers("c5", "request"), fx.V1_IRIS_REQUEST)
    assert services.kserve.flush_expired() == 0  # still within the wait
    later = datetime.now(UTC) + timedelta(seconds=services.settings.pairing_wait_seconds + 1)
    assert services.kserve.flush_expired(later) == 1
    rows = stored(services)
    assert [(r[0], r[2], r[3]) for r in rows] == [
        ("c5:0", None, "no_response"),
        ("c5:1", None, "no_response"),
    ]
    assert pending(services) == 0
    sample = services.registry.get_sample_value
    assert sample("monitor_ingest_unpaired_total", {"source": "kserve", "reason": "timeout"}) == 1
    # the late response is a duplicate of what was stored, not a second prediction
    late = send(client, fx.kserve_headers("c5", "response"), fx.V1_IRIS_RESPONSE)
    assert late.json()["duplicates"] == 1
    assert len(stored(services)) == 2


def test_a_non_2xx_status_code_counts_as_an_error(client: TestClient, services: Services) -> None:
    declare_iris(client)
    send(client, fx.kserve_headers("c6", "request", time=ago(90)), fx.V1_IRIS_REQUEST)
    headers = {**fx.kserve_headers("c6", "response", time=ago(89)), "ce-statuscode": "500"}
    r = send(client, headers, {"error": "model crashed"})
    assert r.json()["stored"] == 2
    assert {row[3] for row in stored(services)} == {"error"}
    jobs = client.post("/v1/jobs/run?model=sklearn-iris&job=serving")
    assert jobs.status_code == 200, jobs.text
    with services.engine.connect() as conn:
        ratio = (
            conn.execute(
                text("SELECT value FROM latest_results WHERE metric = 'prediction_error_ratio'")
            )
            .scalars()
            .all()
        )
    assert ratio
    assert set(ratio) == {1.0}


def test_latency_comes_from_ce_time_when_both_halves_carry_it(
    client: TestClient, services: Services
) -> None:
    declare_iris(client)
    start = datetime.now(UTC) - timedelta(minutes=1)
    end = start + timedelta(milliseconds=42)
    send(client, fx.kserve_headers("c7", "request", time=start.isoformat()), fx.V1_IRIS_REQUEST)
    send(client, fx.kserve_headers("c7", "response", time=end.isoformat()), fx.V1_IRIS_RESPONSE)
    assert [round(r[5], 3) for r in stored(services)] == [42.0, 42.0]
    send(client, fx.kserve_headers("c8", "request"), fx.V1_IRIS_REQUEST)
    send(client, fx.kserve_headers("c8", "response", time=end.isoformat()), fx.V1_IRIS_RESPONSE)
    assert [r[5] for r in stored(services) if r[0].startswith("c8")] == [None, None]


def test_the_canary_endpoint_is_the_canary_variant_and_the_query_sets_the_version(
    client: TestClient, services: Services
) -> None:
    declare_iris(client, "iris")
    headers = fx.kserve_headers("c9", "request", endpoint="canary")
    send(client, headers, fx.V1_IRIS_REQUEST, "?model=iris&version=2.1")
    send(
        client,
        fx.kserve_headers("c9", "response", endpoint="canary"),
        fx.V1_IRIS_RESPONSE,
        "?model=iris&version=2.1",
    )
    assert {(r[4], r[6]) for r in stored(services)} == {("canary", "2.1")}
    assert services.models.get("sklearn-iris") is None


def test_mlserver_headers_join_by_request_id(client: TestClient, services: Services) -> None:
    request_headers = fx.mlserver_headers("e621cc3b", "request")
    request_headers["Ce-Id"] = "another-id"  # Seldon's logger gives each event its own id
    r = send(
        client,
        request_headers,
        {
            "inputs": [
                {"name": "sepal_length", "shape": [1], "datatype": "FP32", "data": [5.1]},
                {"name": "petal_length", "shape": [1], "datatype": "FP32", "data": [1.4]},
            ]
        },
    )
    assert r.status_code == 200, r.text
    r = send(client, fx.mlserver_headers("e621cc3b", "response"), fx.MLSERVER_IRIS_RESPONSE)
    assert r.json()["stored"] == 1
    # model: Ce-Inferenceservicename; version: the V2 response's model_version
    assert services.models.get("mlserver") is not None
    assert [(r[0], r[2], r[6]) for r in stored(services)] == [("e621cc3b:0", 2.0, "1")]


def test_mlserver_outside_a_deployment_is_named_by_its_model_id(
    client: TestClient, services: Services
) -> None:
    headers = {**fx.mlserver_headers("r1", "response"), "Ce-Inferenceservicename": "NOTIMPLEMENTED"}
    send(client, headers, fx.MLSERVER_IRIS_RESPONSE, "?mode=response")
    assert services.models.get("iris_1") is not None
    assert len(stored(services)) == 1


def _structured(ce_id: str, half: str, data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": ce_id,
        "source": "http://localhost:9081/",
        "type": f"org.kubeflow.serving.inference.{half}",
        "inferenceservicename": "sklearn-iris",
        "endpoint": "default",
        "datacontenttype": "application/json",
        "data": data,
    }


def test_structured_and_batch_modes(client: TestClient, services: Services) -> None:
    declare_iris(client)
    r = client.post(
        URL,
        headers={"content-type": "application/cloudevents+json"},
        content=orjson.dumps(_structured("s1", "request", fx.V1_IRIS_REQUEST)),
    )
    assert r.json()["pending"] == 1
    response = _structured("s1", "response", None)
    del response["data"]
    response["data_base64"] = base64.b64encode(orjson.dumps(fx.V1_IRIS_RESPONSE)).decode()
    batch = [
        response,
        _structured("s2", "request", fx.V1_IRIS_REQUEST),
        _structured("s2", "response", fx.V1_IRIS_RESPONSE),
    ]
    r = client.post(
        URL,
        headers={"content-type": "application/cloudevents-batch+json"},
        content=orjson.dumps(batch),
    )
    assert r.json()["stored"] == 4
    assert r.json()["paired"] == 2
    assert pending(services) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ce-id": None}, "ce-id"),
        ({"ce-type": "com.example.other"}, "ce-type"),
        ({"ce-specversion": "2.0"}, "ce-specversion"),
        ({"ce-inferenceservicename": None}, "ce-inferenceservicename"),
        ({"ce-inferenceservicename": "bad name!"}, "ce-inferenceservicename"),
        ({"ce-statuscode": "abc"}, "ce-statuscode"),
        ({"ce-time": "yesterday"}, "ce-time"),
    ],
)
def test_a_bad_header_is_400_naming_it(
    client: TestClient, services: Services, change: dict[str, str | None], field: str
) -> None:
    headers: dict[str, str] = {}
    for k, v in {**fx.kserve_headers("b1", "request"), **change}.items():
        if v is not None:
            headers[k] = v
    r = send(client, headers, {"instances": [{"a": 1.0}]})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"][0]["field"] == field
    assert stored_nothing(services.engine)
    assert pending(services) == 0


def test_positional_rows_of_an_undeclared_model_say_what_to_declare(
    client: TestClient, services: Services
) -> None:
    r = send(client, fx.kserve_headers("u1", "request"), fx.V1_IRIS_REQUEST)
    assert r.status_code == 422
    assert "input_names" in r.json()["error"]["message"]
    assert stored_nothing(services.engine)
    assert pending(services) == 0


def test_a_shape_mismatch_is_422(client: TestClient, services: Services) -> None:
    body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1.0] * 7}]}
    declare_iris(client)
    r = send(client, fx.kserve_headers("u2", "request"), body)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "inputs[0].data"
    assert pending(services) == 0
    assert count(services.engine, "predictions") == 0


def test_a_request_with_bad_features_is_refused_when_it_arrives(
    client: TestClient, services: Services
) -> None:
    r = send(client, fx.kserve_headers("u3", "request"), fx.MLSERVER_PD_REQUEST)
    assert r.status_code == 422  # "First Name" is not a usable feature name
    assert pending(services) == 0
    assert stored_nothing(services.engine)


def test_a_batch_with_one_bad_event_stores_nothing(client: TestClient, services: Services) -> None:
    declare_iris(client)
    batch = [
        _structured("x1", "request", fx.V1_IRIS_REQUEST),
        _structured("x1", "response", fx.V1_IRIS_RESPONSE),
        {**_structured("x2", "request", fx.V1_IRIS_REQUEST), "type": "nope"},
    ]
    r = client.post(
        URL,
        headers={"content-type": "application/cloudevents-batch+json"},
        content=orjson.dumps(batch),
    )
    assert r.status_code == 400
    detail = r.json()["error"]["details"][0]
    assert (detail["index"], detail["field"]) == (2, "type")
    assert count(services.engine, "predictions") == 0
    assert pending(services) == 0


def test_halves_with_different_row_counts_store_nothing(
    client: TestClient, services: Services
) -> None:
    declare_iris(client)
    send(client, fx.kserve_headers("m1", "request"), fx.V1_IRIS_REQUEST)
    r = send(client, fx.kserve_headers("m1", "response"), {"predictions": [1]})
    assert r.status_code == 422
    assert count(services.engine, "predictions") == 0
    assert pending(services) == 1  # the request still waits, untouched


@pytest.fixture
def tight(settings: Settings, db_url: str) -> Iterator[tuple[TestClient, Services]]:
    svc = build_services(
        settings.model_copy(update={"max_pending_calls": 1}), db_url, registry=CollectorRegistry()
    )
    with TestClient(create_app(svc)) as test_client:
        yield test_client, svc
    svc.engine.dispose()


def test_pending_calls_are_bounded_and_the_overflow_is_stored_alone(
    tight: tuple[TestClient, Services],
) -> None:
    client, services = tight
    declare_iris(client)
    assert (
        send(client, fx.kserve_headers("p1", "request"), fx.V1_IRIS_REQUEST).json()["pending"] == 1
    )
    r = send(client, fx.kserve_headers("p2", "request"), fx.V1_IRIS_REQUEST)
    assert r.json()["unpaired"] == 1
    assert r.json()["stored"] == 2
    assert pending(services) == 1
    sample = services.registry.get_sample_value
    assert sample("monitor_ingest_unpaired_total", {"source": "kserve", "reason": "pending_full"})


def test_mode_request_stores_each_request_at_once(client: TestClient, services: Services) -> None:
    declare_iris(client)
    r = send(client, fx.kserve_headers("q1", "request"), fx.V1_IRIS_REQUEST, "?mode=request")
    assert r.json()["stored"] == 2
    assert {row[3] for row in stored(services)} == {"ok"}
    assert pending(services) == 0


def test_bad_query_parameters_are_422(client: TestClient) -> None:
    r = send(client, fx.kserve_headers("q2", "request"), fx.V1_IRIS_REQUEST, "?mode=sometimes")
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "mode"
