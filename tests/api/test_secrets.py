"""Secrets are write-only; reads need a token when asked to; readiness tells no internals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from monitor.api.app import create_app
from monitor.config import Settings
from monitor.services import Services, build_services
from tests.support.appserver import free_port

SECRET = "hmac-shared-secret-42"
WEBHOOK = {"url": "https://ci.example.com/hooks/retrain", "secret": SECRET}


def test_the_webhook_secret_is_never_returned(client: TestClient, services: Services) -> None:
    put = client.put("/v1/models/fraud", json={"webhook": WEBHOOK})
    assert put.status_code == 201, put.text
    listed, one = client.get("/v1/models"), client.get("/v1/models/fraud")
    assert (listed.status_code, one.status_code) == (200, 200)
    for answer in (put, listed, one):
        assert SECRET not in answer.text
    masked = {**WEBHOOK, "secret": "***", "cooldown_seconds": 86_400}
    assert put.json()["config"]["webhook"] == masked
    assert listed.json()["models"][0]["config"]["webhook"] == masked
    assert one.json()["config"]["webhook"] == masked
    with services.engine.connect() as conn:  # the dispatcher still signs with the real one
        stored = conn.execute(text("SELECT config->'webhook'->>'secret' FROM models")).scalar()
    assert stored == SECRET


def test_the_mask_cannot_be_written_back_as_a_secret(client: TestClient) -> None:
    client.put("/v1/models/fraud", json={"webhook": WEBHOOK})
    shown = client.get("/v1/models/fraud").json()["config"]["webhook"]
    again = client.put("/v1/models/fraud", json={"webhook": shown})
    assert again.status_code == 422
    assert again.json()["error"]["details"][0]["field"] == "webhook.secret"


@pytest.fixture
def reads_closed(settings: Settings, db_url: str) -> Iterator[TestClient]:
    closed = settings.model_copy(update={"api_tokens": ["tok-1"], "read_tokens_required": True})
    svc = build_services(closed, db_url, registry=CollectorRegistry())
    with TestClient(create_app(svc)) as client:
        yield client
    svc.engine.dispose()


def test_reads_need_a_token_when_read_tokens_are_required(reads_closed: TestClient) -> None:
    auth = {"Authorization": "Bearer tok-1"}
    assert reads_closed.put("/v1/models/fraud", json={}, headers=auth).status_code == 201
    for path in (
        "/v1/models",
        "/v1/models/fraud",
        "/v1/models/fraud/drift",
        "/v1/webhooks",
    ):
        refused = reads_closed.get(path)
        assert refused.status_code == 401, path
        assert refused.json()["error"]["code"] == "unauthorized"
        assert reads_closed.get(path, headers=auth).status_code in (200, 404), path
    for path in ("/metrics", "/healthz", "/readyz", "/openapi.json"):
        assert reads_closed.get(path).status_code == 200, path


def test_readyz_names_no_host_port_or_driver_text(db_url: str) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://postgres@127.0.0.1:{port}/nowhere"
    settings = Settings(database_url=url, data_dir=Path("/nonexistent"), api_tokens=[])
    svc = build_services(settings, url, registry=CollectorRegistry())
    try:
        with TestClient(create_app(svc)) as client:
            answer = client.get("/readyz")
    finally:
        svc.engine.dispose()
    assert answer.status_code == 503
    assert answer.headers["Retry-After"].isdigit()
    assert answer.json() == {"status": "unavailable", "database": "unreachable"}
    for leak in ("127.0.0.1", str(port), "nowhere", "connection", "psycopg"):
        assert leak not in answer.text.lower()
