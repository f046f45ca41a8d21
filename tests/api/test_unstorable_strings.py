"""Strings PostgreSQL cannot store (a NUL character, a lone surrogate), sent in every string and
every key of every write route's body: a 4xx JSON answer naming the field, and nothing stored.

Each body below is accepted as it is (checked first); then every string value and every object
key in it is spoilt in turn, once with ``\\u0000`` and once with ``\\ud800`` (JSON escapes, as
``json.dumps`` writes them), and sent again.
"""

from __future__ import annotations

import copy
import io
import json
import pathlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from monitor.bulk import ingest_file, load_reference
from monitor.config import Settings
from monitor.errors import ValidationFailed
from monitor.ingest.text import all_storable, json_problem, text_problem
from monitor.services import Services
from tests.api.helpers import count, record

BAD = {"nul": "\x00", "surrogate": "\ud800"}
Path = tuple[str | int, ...]
TABLES = ("models", "predictions", "labels", "events", "reference_sets", "integration_pending")
TABLES += ("webhook_events",)


def _now(minutes: int = 5) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def _predictions() -> dict[str, Any]:
    return {
        "predictions": [
            record(
                0,
                prediction_id="p-0",
                prediction="approve",
                status="ok",
                variant="canary",
                features={"amount": 10.0, "country": "DE", "channel": "web"},
                request={"path": "/score", "tags": ["a", {"deep": "b"}]},
            ),
            record(1, prediction={"scores": {"approve": 0.7}, "text": "approve"}),
        ]
    }


def _labels() -> dict[str, Any]:
    return {"labels": [{"prediction_id": "p-9", "model": "fraud", "label": "refund"}]}


def _event() -> dict[str, Any]:
    return {
        "model": "fraud",
        "event": "deployed",
        "model_version": "3.3.0",
        "variant": "canary",
        "details": {"by": "ci", "tags": ["blue", {"commit": "abc"}]},
    }


def _config() -> dict[str, Any]:
    return {
        "task": "classification",
        "positive_class": "approve",
        "features": [
            {"name": "amount", "kind": "numeric"},
            {"name": "country", "kind": "categorical"},
        ],
        "input_names": ["amount", "country"],
        "drift": {"methods": {"amount": "psi"}},
        "cost": {"currency": "EUR"},
        "windows": ["1h"],
        "webhook": {"url": "http://127.0.0.1:9/retrain", "secret": "s3cret-shared-key"},
    }


def _alertmanager() -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "ml-monitor-retrain",
        "groupKey": "{}:{model=fraud}",
        "groupLabels": {"model": "fraud"},
        "commonLabels": {"action": "retrain"},
        "commonAnnotations": {"summary": "drift"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "MLDatasetDrift", "action": "retrain", "model": "fraud"},
                "annotations": {"summary": "dataset drift on fraud"},
                "startsAt": _now(),
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": "c3f1a0e2d4b5a6f7",
            }
        ],
    }


def _kserve() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "call-1",
        "source": "http://localhost:9081/",
        "type": "org.kubeflow.serving.inference.request",
        "inferenceservicename": "fraud",
        "endpoint": "default",
        "datacontenttype": "application/json",
        "data": {"instances": [{"amount": 1.0, "country": "DE"}]},
    }


# (route, body, content type): every write route that takes a JSON body
ROUTES: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/predictions", _predictions, "application/json"),
    ("POST", "/v1/labels", _labels, "application/json"),
    ("POST", "/v1/events", _event, "application/json"),
    ("PUT", "/v1/models/fraud", _config, "application/json"),
    ("POST", "/v1/alertmanager", _alertmanager, "application/json"),
    ("POST", "/v1/integrations/kserve", _kserve, "application/cloudevents+json"),
]


def _strings(doc: Any, path: Path = ()) -> Iterator[tuple[Path, bool]]:
    """Every string value (``False``) and object key (``True``) of ``doc``, by path."""
    if isinstance(doc, str):
        yield path, False
    elif isinstance(doc, dict):
        for key, value in doc.items():
            yield (*path, key), True
            yield from _strings(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _strings(value, (*path, i))


def _spoilt(doc: Any, path: Path, key: bool, bad: str) -> Any:
    out = copy.deepcopy(doc)
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if key:
        parent[f"{last}{bad}"] = parent.pop(last)
    else:
        parent[last] = f"{parent[last]}{bad}"
    return out


def _name(path: Path) -> str:
    """The key nearest the spoilt string: what the answer has to name."""
    return next(str(step) for step in reversed(path) if isinstance(step, str))


def _stored(services: Services) -> tuple[Any, ...]:
    with services.engine.connect() as conn:
        counts = [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES]
        configs = conn.execute(text("SELECT name, config::text FROM models ORDER BY 1")).all()
    return (*counts, *map(tuple, configs))


@pytest.fixture
def fraud(client: TestClient) -> None:
    r = client.put("/v1/models/fraud", json=_config())
    assert r.status_code == 201, r.text
    # one prediction, so labels have something to join
    r = client.post("/v1/predictions", json={"predictions": [record(9, prediction_id="p-9")]})
    assert r.status_code == 200, r.text


def _refusal(
    client: TestClient, services: Services, route: Any, path: Path, key: bool, bad: str
) -> str | None:
    """What is wrong with the answer to ``route``'s body spoilt at ``path``, or None."""
    method, url, body, kind = route
    before = _stored(services)
    content = json.dumps(_spoilt(body(), path, key, bad))  # ensure_ascii: \u0000, \ud800
    r = client.request(method, url, content=content, headers={"content-type": kind})
    if not 400 <= r.status_code < 500:
        return f"{r.status_code} {r.text[:200]}"
    details = r.json()["error"].get("details", [])
    said = " ".join(f"{d.get('field', '')} {d['problem']}" for d in details)
    if _name(path) not in said:
        return f"does not name {_name(path)!r}: {r.text[:300]}"
    if _stored(services) != before:
        return "stored something"
    return None


@pytest.mark.usefixtures("fraud")
@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {u}" for m, u, _, _ in ROUTES])
def test_an_unstorable_string_anywhere_is_a_4xx_naming_it_and_stores_nothing(
    client: TestClient, services: Services, route: Any
) -> None:
    method, url, body, kind = route
    r = client.request(method, url, content=json.dumps(body()), headers={"content-type": kind})
    assert r.status_code < 300, r.text  # the body as it is is fine
    failures = {}
    spoilt = 0
    for path, key in _strings(body()):
        for name, bad in BAD.items():
            spoilt += 1
            wrong = _refusal(client, services, route, path, key, bad)
            if wrong:
                failures[f"{'.'.join(map(str, path))}{' (key)' if key else ''} {name}"] = wrong
    assert spoilt >= 10
    assert failures == {}


def test_the_checks_find_nul_and_surrogates_and_pass_the_rest() -> None:
    assert text_problem("ok é 🙂") is None
    assert "NUL" in str(text_problem("a\x00"))
    assert "surrogate" in str(text_problem("a\udc80"))
    assert all_storable(["a", None, "é"])
    assert not all_storable(["a", None, "b\x00"])
    assert not all_storable(["\ud83d", "\ude42"])  # halves of a pair in two strings
    assert json_problem({"a": [1, {"b": "x"}]}) is None
    assert json_problem({"a": [1, {"b": "x\x00"}]}, "extra") == (
        "extra.a.1.b",
        "must not contain the NUL character (U+0000)",
    )
    assert json_problem({"k\ud800": 1}) == (
        "k\ud800",
        "key must not contain a lone surrogate (U+D800-U+DFFF)",
    )


def _csv(cell: str) -> bytes:
    return f"amount,country,prediction\n1.5,DE,approve\n2.5,{cell},approve\n".encode()


def _parquet(cell: str) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"amount": [1.5, 2.5], "country": ["DE", cell]}), sink)
    return sink.getvalue()


@pytest.mark.usefixtures("fraud")
@pytest.mark.parametrize(
    ("body", "kind", "field"),
    [
        (_csv("D\x00E"), "text/csv", "features.country"),
        (_csv("DE").replace(b"2.5,DE,approve", b"2.5,DE,app\x00rove"), "text/csv", "prediction"),
        (_parquet("D\x00E"), "application/vnd.apache.parquet", "features.country"),
        (
            json.dumps({"amount": 1.0, "country": "D\ud800"}).encode(),
            "application/x-ndjson",
            "features.country",
        ),
    ],
    ids=["csv-feature", "csv-prediction", "parquet", "ndjson-surrogate"],
)
def test_an_unstorable_string_in_a_reference_file_is_a_422_naming_row_and_column(
    client: TestClient, services: Services, body: bytes, kind: str, field: str
) -> None:
    before = _stored(services)
    r = client.post("/v1/models/fraud/reference", content=body, headers={"content-type": kind})
    assert r.status_code == 422, r.text
    details = r.json()["error"]["details"]
    assert [d["field"] for d in details] == [field], details
    assert _stored(services) == before


@pytest.mark.usefixtures("fraud")
def test_an_unstorable_string_in_an_ndjson_batch_names_its_line(
    client: TestClient, services: Services
) -> None:
    lines = [record(1), record(2, features={"amount": 1.0, "country": "F\x00R"}), record(3)]
    lines[2]["request"] = {"path": "/x\ud800"}
    body = "\n".join(json.dumps(line) for line in lines).encode()
    before = _stored(services)
    r = client.post(
        "/v1/predictions", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert r.status_code == 422, r.text
    named = [(d["index"], d["field"]) for d in r.json()["error"]["details"]]
    assert named == [(1, "features.country"), (2, "request.path")]
    assert _stored(services) == before


def test_the_bulk_loader_refuses_a_file_with_a_nul(
    settings: Settings, services: Services, tmp_path: pathlib.Path
) -> None:
    logs = tmp_path / "logs.csv"
    logs.write_bytes(b"prediction_id,amount,country\na,1.0,DE\nb,2.0,F\x00R\n")
    with pytest.raises(ValidationFailed) as caught:
        ingest_file(settings, logs, "fraud")
    assert "country" in str(caught.value.details)
    assert count(services.engine, "predictions") == 0
    reference = tmp_path / "reference.csv"
    reference.write_bytes(b"amount,country\n1.0,DE\n2.0,F\x00R\n")
    with pytest.raises(ValidationFailed):
        load_reference(settings, reference, "fraud")
    assert count(services.engine, "reference_sets") == 0
