"""503 with Retry-After while PostgreSQL is down, and recovery when it is back."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from monitor.api.app import create_app
from monitor.config import Settings
from monitor.embedded import EmbeddedPostgres
from monitor.services import build_services
from monitor.storage import migrate
from tests.api.helpers import count, record
from tests.conftest import reachable_tmp_dir


@pytest.fixture
def own_server() -> Iterator[EmbeddedPostgres]:
    """A cluster of this test's own, so it can be stopped without hurting other tests."""
    server = EmbeddedPostgres(reachable_tmp_dir("mm-down-"))
    server.url = server.ensure_running()
    yield server
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)


def test_database_down_gives_503_then_recovers(own_server: EmbeddedPostgres) -> None:
    settings = Settings(database_url=own_server.url, api_tokens=[])
    svc = build_services(settings, own_server.url, registry=CollectorRegistry())
    migrate.upgrade(svc.engine)
    with TestClient(create_app(svc)) as client:
        assert client.post("/v1/predictions", json={"predictions": [record(0)]}).status_code == 200
        own_server.stop()
        down = client.post("/v1/predictions", json={"predictions": [record(1)]})
        assert down.status_code == 503
        assert down.headers["Retry-After"].isdigit()
        assert down.json()["error"]["code"] == "database_unavailable"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/models").status_code == 503

        own_server.ensure_running()
        up = client.post("/v1/predictions", json={"predictions": [record(1)]})
        assert up.status_code == 200, up.text
        assert client.get("/readyz").status_code == 200
    assert count(svc.engine, "predictions") == 2
    svc.engine.dispose()
