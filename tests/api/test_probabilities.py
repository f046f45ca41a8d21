"""A classifier's score per class (``probabilities``): stored as sent on both ingest paths, in
prediction logs, reference uploads (an object, or CSV's ``probabilities.<class>`` columns) and
frozen windows; any bad score rejects the batch, names the record and stores nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from monitor.bulk import ingest_file
from monitor.config import Settings
from monitor.ingest.rules import MAX_CLASSES
from monitor.services import Services
from tests.api.helpers import record, stored_nothing

SCORES = {"cat": 0.7, "dog": 0.2, "bird": 0.1}


def post(client: TestClient, records: list[Any]) -> Any:
    return client.post("/v1/predictions", json={"predictions": records})


def stored(services: Services, table: str) -> list[Any]:
    with services.engine.connect() as conn:
        return list(
            conn.execute(text(f"SELECT probabilities FROM {table} ORDER BY 1::text")).scalars()
        )


@pytest.mark.parametrize("rows", [3, 300])  # 300: regular enough for the column-wise check
def test_scores_are_stored_as_sent(client: TestClient, services: Services, rows: int) -> None:
    batch = [record(i, prediction="cat", probabilities=SCORES) for i in range(rows)]
    batch[0]["probabilities"] = None
    r = post(client, batch)
    assert r.status_code == 200, r.text
    got = stored(services, "predictions")
    assert got.count(SCORES) == rows - 1
    assert got.count(None) == 1
    with services.engine.connect() as conn:
        extra = conn.execute(text("SELECT count(extra) FROM predictions")).scalar_one()
    assert extra == 0  # a known field, not an unknown one kept aside


def test_a_null_score_leaves_its_class_out(client: TestClient, services: Services) -> None:
    r = post(client, [record(0, probabilities={"cat": 1, "dog": None}), record(1)])
    assert r.status_code == 200, r.text
    assert stored(services, "predictions") == [{"cat": 1}, None]


@pytest.mark.parametrize(
    ("scores", "problem"),
    [
        ([0.7, 0.3], "must be an object"),
        ("cat", "must be an object"),
        ({"cat": 1.5}, "'cat' must be a number in [0, 1]"),
        ({"cat": -0.1}, "'cat' must be a number in [0, 1]"),
        ({"cat": "0.7"}, "'cat' must be a number in [0, 1]"),
        ({"cat": True}, "'cat' must be a number in [0, 1]"),
        ({"": 0.5}, "class names must be non-empty"),
        ({"x" * 300: 0.5}, "at most 256 characters"),
        ({"ca\x00t": 0.5}, "class name"),
        ({f"c{i}": 0.001 for i in range(MAX_CLASSES + 1)}, f"at most {MAX_CLASSES}"),
    ],
)
def test_a_bad_score_rejects_the_batch(
    client: TestClient, services: Services, scores: Any, problem: str
) -> None:
    batch = [record(i, probabilities=SCORES) for i in range(3)]
    batch[2]["probabilities"] = scores
    r = post(client, batch)
    assert r.status_code == 422, r.text
    (detail,) = r.json()["error"]["details"]
    assert (detail["index"], detail["field"]) == (2, "probabilities")
    assert problem in detail["problem"]
    assert stored_nothing(services.engine)


def test_reference_csv_takes_one_column_per_class(client: TestClient, services: Services) -> None:
    body = (
        "amount,country,prediction,label,probabilities.cat,probabilities.dog\n"
        "1.0,DE,cat,cat,0.8,0.2\n"
        "2.0,FR,dog,cat,0.4,0.6\n"
        "3.0,FR,dog,dog,,1.0\n"
    )
    r = client.post("/v1/models/pets/reference", content=body, headers={"content-type": "text/csv"})
    assert r.status_code == 201, r.text
    assert sorted(map(orjson.dumps, stored(services, "reference_rows"))) == sorted(
        map(orjson.dumps, [{"cat": 0.8, "dog": 0.2}, {"cat": 0.4, "dog": 0.6}, {"dog": 1.0}])
    )
    model = services.models.require("pets")
    assert [f.name for f in model.schema.features] == ["amount", "country"]


def test_reference_ndjson_takes_an_object_and_checks_it(
    client: TestClient, services: Services
) -> None:
    good = {"amount": 1.0, "prediction": "cat", "label": "dog", "probabilities": SCORES}
    bad = {**good, "probabilities": {"cat": 2.0}}
    body = b"\n".join(orjson.dumps(r) for r in (good, good, bad))
    headers = {"content-type": "application/x-ndjson"}
    r = client.post("/v1/models/pets/reference", content=body, headers=headers)
    assert r.status_code == 422, r.text
    (detail,) = r.json()["error"]["details"]
    assert (detail["index"], detail["field"]) == (2, "probabilities")
    assert stored(services, "reference_rows") == []
    r = client.post(
        "/v1/models/pets/reference", content=body[: body.rindex(b"\n")], headers=headers
    )
    assert r.status_code == 201, r.text
    assert stored(services, "reference_rows") == [SCORES, SCORES]


def test_a_frozen_window_keeps_the_scores(client: TestClient, services: Services) -> None:
    assert post(client, [record(i, probabilities=SCORES) for i in range(4)]).status_code == 200
    r = client.post(
        "/v1/models/fraud/reference",
        json={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
    )
    assert r.status_code == 201, r.text
    assert stored(services, "reference_rows") == [SCORES] * 4


def test_bulk_csv_ingest_gathers_the_class_columns(
    settings: Settings, services: Services, tmp_path: Path
) -> None:
    logs = tmp_path / "logs.csv"
    logs.write_text(
        "prediction_id,amount,prediction,probabilities.cat,probabilities.dog\n"
        "a-1,1.0,cat,0.9,0.1\n"
        "a-2,2.0,dog,0.3,0.7\n"
    )
    assert ingest_file(settings, logs, "pets") == 2
    assert sorted(map(orjson.dumps, stored(services, "predictions"))) == sorted(
        map(orjson.dumps, [{"cat": 0.9, "dog": 0.1}, {"cat": 0.3, "dog": 0.7}])
    )
    model = services.models.require("pets")
    assert [f.name for f in model.schema.features] == ["amount"]
