"""POST /v1/predictions: storage, idempotency, schema inference and every kind of bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from monitor.services import Services
from tests.api.helpers import count, record, stored_nothing


def post(client: TestClient, records: list[Any], **kw: Any) -> Any:
    return client.post("/v1/predictions", json={"predictions": records}, **kw)


def test_batch_is_stored_with_typed_features(client: TestClient, services: Services) -> None:
    r = post(client, [record(i) for i in range(3)])
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 3, "stored": 3, "duplicates": 0}
    with services.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT num, cat, prediction, latency_ms, status, variant FROM predictions "
                "ORDER BY prediction_id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ([10.0], ["FR"], 0.5, 20.0, "ok", "production"),
        ([11.0], ["DE"], 0.5, 21.0, "ok", "production"),
        ([12.0], ["FR"], 0.5, 22.0, "ok", "production"),
    ]
    model = services.models.require("fraud")
    assert [(f.name, f.kind) for f in model.schema.features] == [
        ("amount", "numeric"),
        ("country", "categorical"),
    ]


def test_resend_stores_nothing_twice(client: TestClient, services: Services) -> None:
    batch = [record(i) for i in range(5)]
    assert post(client, batch).json()["stored"] == 5
    again = post(client, [*batch, record(5)])
    assert again.json() == {"received": 6, "stored": 1, "duplicates": 5}
    assert count(services.engine, "predictions") == 6
    metric = services.registry.get_sample_value(
        "ml_predictions_total", {"model": "fraud", "model_version": "3.2.0", "status": "ok"}
    )
    assert metric == 6


def test_repeated_id_within_one_batch_is_stored_once(
    client: TestClient, services: Services
) -> None:
    r = post(client, [record(1), record(1, features={"amount": 99.0})])
    assert r.json()["stored"] == 1
    assert count(services.engine, "predictions") == 1


def test_ndjson_body(client: TestClient, services: Services) -> None:
    body = b"\n".join(orjson.dumps(record(i)) for i in range(4)) + b"\n"
    r = client.post(
        "/v1/predictions", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert r.status_code == 200, r.text
    assert count(services.engine, "predictions") == 4


def test_records_without_id_or_timestamp_are_accepted(
    client: TestClient, services: Services
) -> None:
    r = post(client, [{"model": "m1", "features": {"x": 1}}, {"model": "m1", "features": {"x": 2}}])
    assert r.json()["stored"] == 2
    assert count(services.engine, "predictions", "prediction_id IS NULL") == 2


def test_unknown_features_and_fields_are_kept_not_dropped(
    client: TestClient, services: Services
) -> None:
    post(client, [record(0)])
    r = post(client, [record(1, features={"amount": 1.0, "channel": "web"}, region="eu")])
    assert r.status_code == 200, r.text
    with services.engine.connect() as conn:
        extra = conn.execute(
            text("SELECT extra FROM predictions WHERE prediction_id='p-1'")
        ).scalar()
    assert extra == {"unknown_features": {"channel": "web"}, "region": "eu"}


def test_unknown_features_rejected_when_model_says_so(
    client: TestClient, services: Services
) -> None:
    client.put(
        "/v1/models/strict",
        json={"features": [{"name": "a", "kind": "numeric"}], "unknown_features": "reject"},
    )
    r = post(client, [{"model": "strict", "features": {"a": 1, "b": 2}}])
    assert r.status_code == 422
    assert r.json()["error"]["details"] == [
        {"index": 0, "field": "features.b", "problem": "is not in the model's feature schema"}
    ]


def test_multi_model_batch_is_all_or_nothing(client: TestClient, services: Services) -> None:
    r = post(client, [record(0, model="a"), record(1, model="b", latency_ms="slow")])
    assert r.status_code == 422
    assert stored_nothing(services.engine)


def test_backfill_creates_missing_partition(client: TestClient, services: Services) -> None:
    r = post(
        client,
        [record(0, timestamp=_days_ago(9))],
    )
    assert r.status_code == 200, r.text
    assert count(services.engine, "predictions") == 1


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


BAD_RECORDS: list[tuple[str, dict[str, Any], str]] = [
    ("missing model", {"features": {"a": 1}}, "model"),
    ("missing features", {"model": "m"}, "features"),
    ("features not an object", {"model": "m", "features": [1, 2]}, "features"),
    ("model not a string", {"model": 7, "features": {"a": 1}}, "model"),
    (
        "sql in model name",
        {"model": "x'; DROP TABLE predictions;--", "features": {"a": 1}},
        "model",
    ),
    (
        "sql in feature name",
        {"model": "m", "features": {"a'); DROP TABLE models;--": 1}},
        "features.a'); DROP TABLE models;--",
    ),
    ("nested feature value", {"model": "m", "features": {"a": {"b": 1}}}, "features.a"),
    ("huge string", {"model": "m", "features": {"a": "x" * 5000}}, "features.a"),
    (
        "latency not a number",
        {"model": "m", "features": {"a": 1}, "latency_ms": "fast"},
        "latency_ms",
    ),
    ("negative latency", {"model": "m", "features": {"a": 1}, "latency_ms": -1}, "latency_ms"),
    ("bad timestamp", {"model": "m", "features": {"a": 1}, "timestamp": "yesterday"}, "timestamp"),
    (
        "timestamp in the future",
        {"model": "m", "features": {"a": 1}, "timestamp": "2999-01-01T00:00:00Z"},
        "timestamp",
    ),
    (
        "timestamp beyond retention",
        {"model": "m", "features": {"a": 1}, "timestamp": "2001-01-01T00:00:00Z"},
        "timestamp",
    ),
    ("tokens not an integer", {"model": "m", "features": {"a": 1}, "tokens_in": 1.5}, "tokens_in"),
    (
        "empty prediction id",
        {"model": "m", "features": {"a": 1}, "prediction_id": ""},
        "prediction_id",
    ),
    (
        "variant with spaces",
        {"model": "m", "features": {"a": 1}, "variant": "my canary"},
        "variant",
    ),
]


@pytest.mark.parametrize(("case", "bad", "field"), BAD_RECORDS, ids=[c[0] for c in BAD_RECORDS])
def test_bad_record_rejects_whole_batch_and_is_named(
    client: TestClient, services: Services, case: str, bad: dict[str, Any], field: str
) -> None:
    good = {"model": "m", "features": {"a": 1}}
    r = post(client, [good, bad, good])
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    assert {"index": 1, "field": field} == {k: error["details"][0][k] for k in ("index", "field")}
    assert stored_nothing(services.engine)


def test_every_bad_record_is_named(client: TestClient, services: Services) -> None:
    post(client, [{"model": "m", "features": {"a": 1.0}}])
    r = post(
        client,
        [
            {"model": "m", "features": {"a": "text"}},
            {"model": "m", "features": {"a": 2}},
            {"model": "m", "features": {"a": True}},
        ],
    )
    assert r.status_code == 422
    assert [(d["index"], d["field"]) for d in r.json()["error"]["details"]] == [
        (0, "features.a"),
        (2, "features.a"),
    ]
    assert count(services.engine, "predictions") == 1  # only the first, good batch


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_are_rejected(
    client: TestClient, services: Services, literal: bytes
) -> None:
    body = b'{"predictions": [{"model": "m", "features": {"a": ' + literal + b"}}]}"
    r = client.post("/v1/predictions", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert "error" in r.json()
    assert stored_nothing(services.engine)


def test_ten_thousand_features_is_refused(client: TestClient, services: Services) -> None:
    features = {f"f{i}": float(i) for i in range(10_000)}
    r = post(client, [{"model": "wide", "features": features}])
    assert r.status_code == 422
    assert "limit" in r.json()["error"]["details"][0]["problem"]
    assert stored_nothing(services.engine)


def test_mixed_kinds_in_first_batch_cannot_be_inferred(
    client: TestClient, services: Services
) -> None:
    r = post(client, [{"model": "m", "features": {"a": 1}}, {"model": "m", "features": {"a": "x"}}])
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "features.a"
    assert stored_nothing(services.engine)


@pytest.mark.parametrize("body", [b"{", b"[1,", b"\xff\xfe", b""])
def test_malformed_json_is_400(client: TestClient, services: Services, body: bytes) -> None:
    r = client.post("/v1/predictions", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "malformed_body"
    assert stored_nothing(services.engine)


def test_malformed_ndjson_line_is_named(client: TestClient, services: Services) -> None:
    body = orjson.dumps(record(0)) + b"\n{oops\n"
    r = client.post(
        "/v1/predictions", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["index"] == 1
    assert stored_nothing(services.engine)


@pytest.mark.parametrize("body", [b'{"records": []}', b'{"predictions": {}}', b'"text"'])
def test_wrong_envelope_is_400(client: TestClient, body: bytes) -> None:
    r = client.post("/v1/predictions", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
def test_wrong_content_type_is_415(
    client: TestClient, services: Services, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    r = client.post(
        "/v1/predictions", content=orjson.dumps({"predictions": [record(0)]}), headers=headers
    )
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert stored_nothing(services.engine)


def test_oversize_body_is_413(services: Services) -> None:
    from monitor.api.app import create_app

    services.settings = services.settings.model_copy(update={"max_body_bytes": 1000})
    with TestClient(create_app(services)) as small:
        r = small.post("/v1/predictions", json={"predictions": [record(i) for i in range(50)]})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert stored_nothing(services.engine)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_batch_over_max_batch_records_is_413_naming_the_limit(
    services: Services, content_type: str
) -> None:
    from monitor.api.app import create_app

    services.settings = services.settings.model_copy(update={"max_batch_records": 10})
    records = [record(i) for i in range(11)]
    body = (
        orjson.dumps({"predictions": records})
        if content_type == "application/json"
        else b"\n".join(map(orjson.dumps, records))
    )
    with TestClient(create_app(services)) as small:
        r = small.post("/v1/predictions", content=body, headers={"Content-Type": content_type})
        assert r.status_code == 413
        error = r.json()["error"]
        assert error["code"] == "payload_too_large"
        assert "MONITOR_MAX_BATCH_RECORDS" in error["message"]
        assert error["details"] == [
            {"field": "predictions", "problem": "has 11 records; the limit is 10"}
        ]
        assert stored_nothing(services.engine)
        labels = [{"prediction_id": str(i), "model": "m", "label": 1} for i in range(11)]
        assert small.post("/v1/labels", json={"labels": labels}).status_code == 413
        assert count(services.engine, "labels") == 0
        assert post(small, records[:10]).status_code == 200


def test_sql_metacharacters_do_not_reach_sql(client: TestClient, services: Services) -> None:
    post(client, [{"model": "m'--", "features": {"a": 1}}])
    post(client, [{"model": "m", "features": {'a"; DROP TABLE labels; --': 1}}])
    with services.engine.connect() as conn:
        tables = set(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
        )
    assert {"predictions", "labels", "models"} <= tables
    assert stored_nothing(services.engine)


def test_nan_and_infinity_literals_are_422_naming_record_and_field(
    client: TestClient, services: Services
) -> None:
    """Not strict JSON, but what json.dumps writes: read, then refused like any non-finite
    number, as the README says (422, every bad field named, nothing stored)."""
    client.post("/v1/predictions", json={"predictions": [record(0)]})  # the schema exists
    body = (
        b'{"predictions": [{"model": "fraud", "features": {"amount": NaN}},'
        b' {"model": "fraud", "features": {"amount": 1.5}, "latency_ms": Infinity},'
        b' {"model": "fraud", "features": {"amount": 2.5}, "prediction": -Infinity}]}'
    )
    r = client.post("/v1/predictions", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    named = [(d["index"], d["field"]) for d in r.json()["error"]["details"]]
    assert named == [(0, "features.amount"), (1, "latency_ms"), (2, "prediction")]
    ndjson = client.post(
        "/v1/predictions",
        content=b'{"model": "fraud", "features": {"amount": NaN}}\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert ndjson.status_code == 422, ndjson.text
    assert count(services.engine, "predictions") == 1
    still_malformed = client.post(
        "/v1/predictions",
        content=b'{"predictions": [NaN',
        headers={"Content-Type": "application/json"},
    )
    assert still_malformed.status_code == 400
