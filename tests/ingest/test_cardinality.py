"""The cardinality guard: models, versions and variants from payloads are capped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from monitor.api.app import create_app
from monitor.config import Settings
from monitor.services import Services, build_services
from tests.api.helpers import count, record


@pytest.fixture
def capped(settings: Settings, db_url: str) -> Iterator[tuple[TestClient, Services]]:
    caps = {"max_models": 2, "max_versions_per_model": 2, "max_variants_per_model": 2}
    svc = build_services(settings.model_copy(update=caps), db_url, registry=CollectorRegistry())
    with TestClient(create_app(svc)) as client:
        yield client, svc
    svc.engine.dispose()


def post(client: TestClient, records: list[dict[str, object]]) -> object:
    return client.post("/v1/predictions", json={"predictions": records})


def test_a_model_over_the_cap_is_refused_and_counted(capped: tuple[TestClient, Services]) -> None:
    client, svc = capped
    assert post(client, [record(0, model="a"), record(1, model="b")]).status_code == 200
    r = client.post("/v1/predictions", json={"predictions": [record(2, model="c")]})
    assert r.status_code == 422
    detail = r.json()["error"]["details"][0]
    assert detail["field"] == "model"
    assert "MONITOR_MAX_MODELS is 2" in detail["problem"]
    assert svc.models.get("c") is None
    assert count(svc.engine, "predictions") == 2
    sample = svc.registry.get_sample_value
    assert sample("monitor_ingest_rejected_total", {"reason": "cardinality_model"}) == 1
    # existing models still take data
    assert post(client, [record(3, model="a")]).status_code == 200


def test_versions_and_variants_over_the_cap_are_refused_whole_batch(
    capped: tuple[TestClient, Services],
) -> None:
    client, svc = capped
    ok = [record(0, model_version="1"), record(1, model_version="2")]
    assert post(client, ok).status_code == 200
    r = client.post(
        "/v1/predictions",
        json={"predictions": [record(2, model_version="1"), record(3, model_version="3")]},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"] == [
        {
            "index": 1,
            "field": "model_version",
            "problem": "'3' would be version number 3 of this model; "
            "MONITOR_MAX_VERSIONS_PER_MODEL is 2",
        }
    ]
    assert count(svc.engine, "predictions") == 2
    variants = [
        record(4, model_version="1", variant="production"),
        record(5, model_version="1", variant="canary"),
    ]
    assert post(client, variants).status_code == 200
    r = client.post(
        "/v1/predictions", json={"predictions": [record(6, model_version="1", variant="shadow")]}
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "variant"
    sample = svc.registry.get_sample_value
    assert sample("monitor_ingest_rejected_total", {"reason": "cardinality_model_version"}) == 1
    assert sample("monitor_ingest_rejected_total", {"reason": "cardinality_variant"}) == 1
    # no series for refused values
    assert (
        sample("ml_predictions_total", {"model": "fraud", "model_version": "3", "status": "ok"})
        is None
    )


def test_a_new_model_cannot_bring_more_versions_than_the_cap(
    capped: tuple[TestClient, Services],
) -> None:
    client, svc = capped
    records = [record(i, model_version=str(i)) for i in range(3)]
    r = client.post("/v1/predictions", json={"predictions": records})
    assert r.status_code == 422
    assert [d["index"] for d in r.json()["error"]["details"]] == [2]
    assert svc.models.get("fraud") is None


def test_the_caps_hold_across_replicas(
    capped: tuple[TestClient, Services], settings: Settings, db_url: str
) -> None:
    client, _ = capped
    post(client, [record(0, model_version="1"), record(1, model_version="2")])
    caps = {"max_versions_per_model": 2}
    other = build_services(settings.model_copy(update=caps), db_url, registry=CollectorRegistry())
    try:
        with TestClient(create_app(other)) as second:
            assert post(second, [record(2, model_version="3")]).status_code == 422
            assert post(second, [record(3, model_version="2")]).status_code == 200
    finally:
        other.engine.dispose()
