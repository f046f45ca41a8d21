"""Bearer tokens on writes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from monitor.api.app import create_app
from monitor.config import Settings
from monitor.errors import ConfigError
from monitor.server import check_exposure
from monitor.services import Services, build_services
from monitor.storage.tokens import create_token
from tests.api.helpers import count, record


@pytest.fixture
def secured(settings: Settings, db_url: str) -> Iterator[tuple[TestClient, Services]]:
    svc = build_services(
        settings.model_copy(update={"api_tokens": ["s3cret-token"]}),
        db_url,
        registry=CollectorRegistry(),
    )
    with TestClient(create_app(svc)) as client:
        yield client, svc
    svc.engine.dispose()


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic czNjcmV0", "Bearer "])
def test_writes_need_a_valid_token(
    secured: tuple[TestClient, Services], header: str | None
) -> None:
    client, svc = secured
    headers = {"Authorization": header} if header else {}
    for path, body in [
        ("/v1/predictions", {"predictions": [record(0)]}),
        ("/v1/labels", {"labels": []}),
    ]:
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
    assert client.put("/v1/models/m", json={}, headers=headers).status_code == 401
    assert count(svc.engine, "predictions") == 0
    assert count(svc.engine, "models") == 0


def test_configured_and_stored_tokens_work(secured: tuple[TestClient, Services]) -> None:
    client, svc = secured
    ok = client.post(
        "/v1/predictions",
        json={"predictions": [record(0)]},
        headers={"Authorization": "Bearer s3cret-token"},
    )
    assert ok.status_code == 200
    stored = create_token(svc.engine, "ci")
    client.app.state.tokens._expires = 0  # drop the 30 s cache
    ok = client.post(
        "/v1/predictions",
        json={"predictions": [record(1)]},
        headers={"Authorization": f"Bearer {stored}"},
    )
    assert ok.status_code == 200
    assert client.get("/v1/models").status_code == 200  # reads stay open


def test_no_tokens_means_loopback_only(services: Services) -> None:
    check_exposure(services, "127.0.0.1")
    with pytest.raises(ConfigError, match="without API tokens"):
        check_exposure(services, "0.0.0.0")
