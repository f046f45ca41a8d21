"""Label and event timestamps take the range prediction timestamps take: within
``retention_days`` and ``max_future_seconds`` of now; outside it, 422 naming record and field,
and nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.services import Services
from tests.api.helpers import count

EXTREMES = ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-05:00"]


def _edges(services: Services) -> tuple[list[str], list[str]]:
    """Timestamps just inside and just outside the range (a minute of slack for the clock)."""
    now = datetime.now(UTC)
    limits = services.ingest.limits
    oldest = now - timedelta(days=limits.retention_days)
    newest = now + timedelta(seconds=limits.max_future_seconds)
    minute = timedelta(minutes=1)
    inside = [oldest + minute, newest - minute]
    outside = [oldest - minute, newest + minute]
    return [t.isoformat() for t in inside], [t.isoformat() for t in outside]


def _labels(*stamps: str) -> dict[str, Any]:
    return {
        "labels": [
            {"prediction_id": f"p-{i}", "model": "fraud", "label": 1, "timestamp": ts}
            for i, ts in enumerate(stamps)
        ]
    }


@pytest.mark.parametrize("stamp", EXTREMES)
def test_a_label_timestamp_out_of_range_is_a_422_and_stores_nothing(
    client: TestClient, services: Services, stamp: str
) -> None:
    assert client.put("/v1/models/fraud", json={}).status_code == 201
    fine = datetime.now(UTC).isoformat()
    r = client.post("/v1/labels", json=_labels(fine, stamp))
    assert r.status_code == 422, r.text
    assert [(d["index"], d["field"]) for d in r.json()["error"]["details"]] == [(1, "timestamp")]
    assert count(services.engine, "labels") == 0


def test_label_timestamps_at_both_edges_of_the_range(
    client: TestClient, services: Services
) -> None:
    assert client.put("/v1/models/fraud", json={}).status_code == 201
    inside, outside = _edges(services)
    r = client.post("/v1/labels", json=_labels(*outside))
    assert r.status_code == 422, r.text
    problems = {(d["index"], d["field"]): d["problem"] for d in r.json()["error"]["details"]}
    assert problems.keys() == {(0, "timestamp"), (1, "timestamp")}
    assert "retention" in problems[0, "timestamp"]
    assert "future" in problems[1, "timestamp"]
    assert count(services.engine, "labels") == 0
    r = client.post("/v1/labels", json=_labels(*inside))
    assert r.status_code == 200, r.text
    assert count(services.engine, "labels") == 2


def _event(stamp: str) -> dict[str, Any]:
    return {"model": "fresh", "event": "deployed", "model_version": "2", "timestamp": stamp}


@pytest.mark.parametrize("stamp", EXTREMES)
def test_an_event_timestamp_out_of_range_is_a_422_and_stores_nothing(
    client: TestClient, services: Services, stamp: str
) -> None:
    r = client.post("/v1/events", json=_event(stamp))
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["error"]["details"]] == ["timestamp"]
    assert count(services.engine, "events") == 0
    assert count(services.engine, "models") == 0  # the event would have created "fresh"


def test_event_timestamps_at_both_edges_of_the_range(
    client: TestClient, services: Services
) -> None:
    inside, outside = _edges(services)
    for stamp, word in zip(outside, ("retention", "future"), strict=True):
        r = client.post("/v1/events", json=_event(stamp))
        assert r.status_code == 422, r.text
        assert word in r.json()["error"]["details"][0]["problem"]
    assert count(services.engine, "events") == 0
    for stamp in inside:
        assert client.post("/v1/events", json=_event(stamp)).status_code == 201
    naive = datetime.now(UTC).replace(tzinfo=None).isoformat()  # UTC, as for predictions
    assert client.post("/v1/events", json=_event(naive)).status_code == 201
    missing = {"model": "fresh", "event": "deployed"}  # now
    assert client.post("/v1/events", json=missing).status_code == 201
    assert count(services.engine, "events") == 4
