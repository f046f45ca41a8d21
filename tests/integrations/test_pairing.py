"""How a waiting request is kept: its features checked once, when it arrives."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import text

from monitor.services import Services
from tests.api.helpers import count
from tests.integrations import fixtures as fx
from tests.integrations.test_kserve import URL, send, stored

IRIS = "sklearn-iris"
ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]


def declare_iris_schema(client: TestClient) -> None:
    """A model whose schema is stored (not inferred from its first batch)."""
    features = [{"name": n, "kind": "numeric"} for n in fx.IRIS_INPUT_NAMES]
    r = client.put(f"/v1/models/{IRIS}", json={"features": features})
    assert r.status_code in (200, 201), r.text


def waiting_request(services: Services) -> dict[str, Any]:
    with services.engine.connect() as conn:
        raw = conn.execute(text("SELECT request::text FROM integration_pending")).scalar_one()
    return dict(orjson.loads(raw))


def features_of(services: Services) -> list[dict[str, Any]]:
    names = services.models.require(IRIS).schema.numeric_names
    return [dict(zip(names, row[1], strict=False)) for row in stored(services)]


def test_a_waiting_request_is_kept_as_its_checked_features(
    client: TestClient, services: Services
) -> None:
    declare_iris_schema(client)
    send(client, fx.kserve_headers("k1", "request"), fx.V1_IRIS_REQUEST)
    kept = waiting_request(services)
    assert kept["rows"] is None  # not the decoded rows: what ingest made of them
    assert kept["checked"]["model_id"] == services.models.require(IRIS).id
    r = send(client, fx.kserve_headers("k1", "response"), fx.V1_IRIS_RESPONSE)
    assert r.json()["stored"] == 2
    expected = [dict(zip(fx.IRIS_INPUT_NAMES, row, strict=True)) for row in ROWS]
    assert features_of(services) == expected
    assert [row[2] for row in stored(services)] == [1.0, 1.0]


def test_unknown_features_of_a_waiting_request_are_kept(
    client: TestClient, services: Services
) -> None:
    declare_iris_schema(client)
    body = {"instances": [{**dict(zip(fx.IRIS_INPUT_NAMES, ROWS[0], strict=True)), "tag": "a"}]}
    send(client, fx.kserve_headers("k2", "request"), body)
    send(client, fx.kserve_headers("k2", "response"), {"predictions": [2]})
    with services.engine.connect() as conn:
        extra = conn.execute(text("SELECT extra FROM predictions")).scalar_one()
    assert extra == {"unknown_features": {"tag": "a"}}


def test_a_schema_grown_between_the_halves_keeps_the_request_features(
    client: TestClient, services: Services
) -> None:
    declare_iris_schema(client)
    send(client, fx.kserve_headers("k3", "request"), fx.V1_IRIS_REQUEST)
    grown = [{"name": n, "kind": "numeric"} for n in [*fx.IRIS_INPUT_NAMES, "petal_area"]]
    assert client.put(f"/v1/models/{IRIS}", json={"features": grown}).status_code == 200
    r = send(client, fx.kserve_headers("k3", "response"), fx.V1_IRIS_RESPONSE)
    assert r.json()["stored"] == 2
    expected = [dict(zip(fx.IRIS_INPUT_NAMES, row, strict=True)) for row in ROWS]
    assert features_of(services) == expected  # a shorter array: the older schema's row


def test_a_response_with_a_bad_field_is_422_naming_it_and_the_request_still_waits(
    client: TestClient, services: Services
) -> None:
    declare_iris_schema(client)
    send(client, fx.kserve_headers("k4", "request"), fx.V1_IRIS_REQUEST)
    r = send(client, fx.kserve_headers("k4", "response"), {"predictions": ["x" * 5000, 1]})
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["error"]["details"]] == ["prediction"]
    assert count(services.engine, "predictions") == 0
    assert count(services.engine, "integration_pending") == 1
    r = send(client, fx.kserve_headers("k4", "response"), fx.V1_IRIS_RESPONSE)
    assert r.json()["stored"] == 2


def test_a_request_kept_by_an_earlier_release_still_pairs(
    client: TestClient, services: Services
) -> None:
    declare_iris_schema(client)
    rows = [dict(zip(fx.IRIS_INPUT_NAMES, row, strict=True)) for row in ROWS]
    old = {"variant": "production", "status": "ok", "time": None, "version": None, "rows": rows}
    with services.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO integration_pending (source, model, pair_key, request) "
                "VALUES ('kserve', :model, 'k5', CAST(:value AS jsonb))"
            ),
            {"model": IRIS, "value": orjson.dumps(old).decode()},
        )
    r = send(client, fx.kserve_headers("k5", "response"), fx.V1_IRIS_RESPONSE)
    assert r.json()["stored"] == 2
    assert features_of(services) == rows


def test_a_request_whose_response_waits_is_checked_once_and_stored(
    client: TestClient, services: Services
) -> None:
    declare_iris_schema(client)
    send(client, fx.kserve_headers("k6", "response"), fx.V1_IRIS_RESPONSE)
    r = send(client, fx.kserve_headers("k6", "request"), {"instances": [[1.0, "x", 3.0, 4.0]]})
    assert r.status_code == 422  # the request's features are checked when it arrives
    assert r.json()["error"]["details"][0]["field"] == "features.sepal_width"
    assert count(services.engine, "integration_pending") == 1  # the response still waits
    r = send(client, fx.kserve_headers("k6", "request"), fx.V1_IRIS_REQUEST)
    assert (r.json()["paired"], r.json()["stored"]) == (1, 2)
    assert count(services.engine, "integration_pending") == 0


def test_a_batch_pairs_waiting_requests_in_one_store(
    client: TestClient, services: Services
) -> None:
    declare_iris_schema(client)
    for key in ("b1", "b2"):
        send(client, fx.kserve_headers(key, "request"), fx.V1_IRIS_REQUEST)
    events = [
        {
            "specversion": "1.0",
            "id": key,
            "source": "http://localhost:9081/",
            "type": "org.kubeflow.serving.inference.response",
            "inferenceservicename": IRIS,
            "data": fx.V1_IRIS_RESPONSE,
        }
        for key in ("b1", "b2")
    ]
    r = client.post(
        URL,
        headers={"content-type": "application/cloudevents-batch+json"},
        content=orjson.dumps(events),
    )
    assert (r.json()["paired"], r.json()["stored"]) == (2, 4)
    assert [row[0] for row in stored(services)] == ["b1:0", "b1:1", "b2:0", "b2:1"]


def test_a_request_of_a_model_without_a_schema_stores_the_inferred_one_when_it_arrives(
    client: TestClient, services: Services
) -> None:
    body = {"instances": [{"amount": 1.5, "country": "DE"}, {"amount": 2.0, "country": "FR"}]}
    send(client, fx.kserve_headers("s1", "request", service="fraud"), body)
    schema = services.models.require("fraud").schema
    assert (schema.numeric_names, schema.categorical_names) == (["amount"], ["country"])
    assert waiting_request(services)["checked"] is not None
    r = send(client, fx.kserve_headers("s1", "response", service="fraud"), {"predictions": [0, 1]})
    assert r.json()["stored"] == 2
    with services.engine.connect() as conn:
        rows = conn.execute(text("SELECT num, cat FROM predictions ORDER BY 1")).all()
    assert [tuple(r) for r in rows] == [([1.5], ["DE"]), ([2.0], ["FR"])]
