"""Every route that takes a body: one size limit (413) before parsing, one malformed-body shape."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from monitor.api.app import create_app
from monitor.config import Settings
from monitor.services import Services, build_services
from tests.api.helpers import count, stored_nothing
from tests.support.appserver import start_app

LIMIT = 4_096
WRITES = {"POST", "PUT", "PATCH"}
# the routes whose body is parsed as JSON (reference also takes CSV / Parquet / NDJSON)
JSON_BODIES = [
    ("POST", "/v1/predictions"),
    ("POST", "/v1/labels"),
    ("PUT", "/v1/models/m"),
    ("POST", "/v1/models/m/reference"),
    ("POST", "/v1/events"),
    ("POST", "/v1/alertmanager"),
    ("POST", "/v1/integrations/kserve"),
]


@pytest.fixture
def small(settings: Settings, db_url: str) -> Iterator[Services]:
    svc = build_services(
        settings.model_copy(update={"max_body_bytes": LIMIT}), db_url, registry=CollectorRegistry()
    )
    yield svc
    svc.engine.dispose()


def write_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) of the API that may carry a body, path parameters filled in."""
    fill = {"{model}": "m", "{event_id}": str(uuid4())}
    found = []
    for template, operations in app.openapi()["paths"].items():
        path = template
        for name, value in fill.items():
            path = path.replace(name, value)
        assert "{" not in path, f"fill in the parameters of {template}"
        found += [(m.upper(), path) for m in operations if m.upper() in WRITES]
    return sorted(found)


def test_every_write_route_refuses_a_body_over_the_limit_before_parsing_it(
    small: Services,
) -> None:
    app = create_app(small)
    routes = write_routes(app)
    assert set(JSON_BODIES) <= set(routes)
    oversize = b'{"pad": "' + b"x" * LIMIT + b'"'  # not even valid JSON: the size comes first
    with TestClient(app) as client:
        for method, path in routes:
            answer = client.request(
                method, path, content=oversize, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 413, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "payload_too_large", (method, path)
    assert stored_nothing(small.engine)


def test_a_streamed_body_without_content_length_is_counted_as_it_arrives(small: Services) -> None:
    server = start_app(create_app(small))
    event = b'{"model": "m", "event": "deployed", "details": {"pad": "' + b"x" * LIMIT + b'"}}'

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for start in range(0, len(event), 512):
            yield event[start : start + 512]

    try:
        answer = httpx.post(
            f"{server.url}/v1/events",
            content=chunks(),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        small_event = httpx.post(
            f"{server.url}/v1/events", json={"model": "m", "event": "deployed"}, timeout=30
        )
    finally:
        server.stop()
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert small_event.status_code == 201, small_event.text
    assert count(small.engine, "events") == 1  # the big one stored nothing


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"a":' * 5_000 + b"1" + b"}" * 5_000, id="nested-5000-deep"),
        pytest.param(b"[" * 100_000, id="100k-open-brackets"),
        pytest.param(b'{"model": "m", "event": ', id="truncated"),
        pytest.param(b'{"model": "m" "event": "deployed"}', id="missing-comma"),
        pytest.param(b'{"model": "\xff\xfe"}', id="invalid-utf8"),
    ],
)
def test_a_malformed_body_is_malformed_body_with_its_position_on_every_route(
    client: TestClient, services: Services, body: bytes
) -> None:
    for method, path in JSON_BODIES:
        answer = client.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400, (method, path, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "malformed_body", (method, path, error)
        (detail,) = error["details"]
        assert detail["field"] == "body", (method, path, error)
        assert isinstance(detail["position"], int), (method, path, error)
        assert 0 <= detail["position"] <= len(body)
    assert stored_nothing(services.engine)


def test_the_position_is_where_the_json_breaks(client: TestClient) -> None:
    body = b'{"model": "m", "event": "deployed",, "x": 1}'
    for path in ("/v1/events", "/v1/predictions"):
        answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert answer.json()["error"]["details"][0]["position"] == body.index(b",,") + 1, path


def test_a_json_route_refuses_another_content_type_with_415(client: TestClient) -> None:
    for method, path in [
        ("PUT", "/v1/models/m"),
        ("POST", "/v1/events"),
        ("POST", "/v1/alertmanager"),
    ]:
        answer = client.request(
            method, path, content=b"model=m", headers={"Content-Type": "text/plain"}
        )
        assert answer.status_code == 415, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "unsupported_media_type"
