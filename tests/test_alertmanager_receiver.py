"""POST /v1/alertmanager: Alertmanager v4 notifications in, retraining events out."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from monitor.api.app import create_app
from monitor.config import Settings
from monitor.services import Services, build_services

WEBHOOK = {"url": "http://127.0.0.1:9/retrain", "secret": "s3cret-shared-key"}


def alert(**labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": "MLDatasetDrift", "action": "retrain", **labels},
        "annotations": {"summary": "dataset drift on fraud", "runbook_url": "https://runbook"},
        "startsAt": "2026-11-23T10:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
        "fingerprint": "c3f1a0e2d4b5a6f7",
    }


def notification(*alerts: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {
        "version": "4",
        "groupKey": '{}/{action="retrain"}:{model="fraud"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "ml-monitor-retrain",
        "groupLabels": {"model": "fraud"},
        "commonLabels": {"action": "retrain", "model": "fraud"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts) or [alert(model="fraud", window="1h", severity="warning")],
    }
    body.update(overrides)
    return body


@pytest.fixture
def fraud(client: TestClient) -> None:
    r = client.put("/v1/models/fraud", json={"webhook": WEBHOOK})
    assert r.status_code == 201, r.text


def events(client: TestClient) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = client.get("/v1/webhooks").json()["events"]
    return body


@pytest.mark.usefixtures("fraud")
def test_a_firing_retrain_alert_enqueues_an_alert_event(client: TestClient) -> None:
    r = client.post("/v1/alertmanager", json=notification())
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["received"], body["ignored"], body["enqueued"]) == (1, 0, 1)
    (result,) = body["results"]
    assert (result["model"], result["outcome"]) == ("fraud", "enqueued")

    (event,) = events(client)
    assert event["event_id"] == result["event_id"]
    assert (event["reason"], event["window"], event["status"]) == ("alert", "1h", "pending")
    payload = event["payload"]
    assert payload["reason"] == "alert"
    assert payload["drift_url"].endswith("/v1/models/fraud/drift?window=1h")
    assert payload["evidence"]["alert"]["name"] == "MLDatasetDrift"
    assert payload["evidence"]["alert"]["labels"]["severity"] == "warning"
    assert payload["evidence"]["alert"]["annotations"]["summary"] == "dataset drift on fraud"
    assert payload["evidence"]["alert"]["starts_at"].startswith("2026-11-23T10:00:00.123456")


def rollback_alert(**labels: str) -> dict[str, Any]:
    body = alert(**labels)
    body["labels"] |= {"alertname": "MLVariantLatencyWorse", "action": "rollback"}
    body["fingerprint"] = "0a1b2c3d4e5f6071"
    return body


@pytest.mark.usefixtures("fraud")
def test_a_rollback_alert_goes_to_the_same_webhook_past_the_retraining_cooldown(
    client: TestClient,
) -> None:
    """A retrain alert starts the model's cooldown; a rollback alert is still enqueued (with
    action=rollback in the signed body), does not restart the cooldown, and a repeat of it is a
    duplicate."""
    assert client.post("/v1/alertmanager", json=notification()).json()["enqueued"] == 1
    canary = rollback_alert(model="fraud", model_version="3.3.0", variant="canary", window="1h")
    r = client.post("/v1/alertmanager", json=notification(canary))
    assert r.status_code == 200, r.text
    (result,) = r.json()["results"]
    assert (result["action"], result["outcome"]) == ("rollback", "enqueued")
    again = client.post("/v1/alertmanager", json=notification(canary)).json()["results"][0]
    assert again["outcome"] == "duplicate"
    by_action = {e["payload"]["action"]: e for e in events(client)}
    assert set(by_action) == {"retrain", "rollback"}
    rollback = by_action["rollback"]
    assert (rollback["reason"], rollback["model_version"]) == ("alert", "3.3.0")
    assert rollback["payload"]["evidence"]["alert"]["labels"]["variant"] == "canary"
    # the retraining cooldown still holds retrain alerts: the rollback did not reset it
    later = alert(model="fraud")
    later["startsAt"] = "2026-11-23T12:00:00Z"
    held = client.post("/v1/alertmanager", json=notification(later)).json()["results"][0]
    assert held["outcome"] == "cooldown"


@pytest.mark.usefixtures("fraud")
def test_a_rollback_alert_without_a_model_is_refused(client: TestClient) -> None:
    r = client.post("/v1/alertmanager", json=notification(rollback_alert()))
    assert r.status_code == 422, r.text
    assert "action=rollback" in r.text
    assert events(client) == []


@pytest.mark.usefixtures("fraud")
def test_repeated_notifications_of_one_alert_enqueue_it_once(client: TestClient) -> None:
    first = client.post("/v1/alertmanager", json=notification()).json()["results"][0]
    repeat = client.post("/v1/alertmanager", json=notification()).json()["results"][0]
    assert repeat == {**first, "outcome": "duplicate"}
    assert len(events(client)) == 1


@pytest.mark.usefixtures("fraud")
def test_a_new_firing_of_the_same_alert_is_a_new_event_held_by_the_cooldown(
    client: TestClient,
) -> None:
    client.post("/v1/alertmanager", json=notification())
    later = alert(model="fraud")
    later["startsAt"] = "2026-11-23T12:00:00Z"
    r = client.post("/v1/alertmanager", json=notification(later))
    (result,) = r.json()["results"]
    assert result["outcome"] == "cooldown"
    assert len(events(client)) == 1


@pytest.mark.usefixtures("fraud")
def test_resolved_alerts_and_other_actions_are_ignored(client: TestClient) -> None:
    resolved = {**alert(model="fraud"), "status": "resolved", "endsAt": "2026-11-23T11:00:00Z"}
    paging = alert(model="fraud")
    paging["labels"]["action"] = "page"
    no_action = alert()  # neither action=retrain nor model: not ours, not an error
    del no_action["labels"]["action"]
    r = client.post(
        "/v1/alertmanager", json=notification(resolved, paging, no_action, status="resolved")
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 3, "ignored": 3, "enqueued": 0, "results": []}
    assert events(client) == []


def test_wrong_version_is_422_naming_the_field(client: TestClient) -> None:
    r = client.post("/v1/alertmanager", json=notification(version="3"))
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    assert [d["field"] for d in error["details"]] == ["version"]


def test_a_retrain_alert_without_model_label_is_422_naming_it(client: TestClient) -> None:
    r = client.post("/v1/alertmanager", json=notification(alert(model="fraud"), alert()))
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    assert error["details"] == [
        {
            "index": 1,
            "field": "labels.model",
            "problem": "a firing alert with action=retrain needs a 'model' label",
        }
    ]


def test_a_retrain_alert_for_an_unknown_model_is_404(client: TestClient) -> None:
    r = client.post("/v1/alertmanager", json=notification(alert(model="nosuchmodel")))
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "not_found"
    assert error["details"][0]["index"] == 0
    assert "nosuchmodel" in error["details"][0]["problem"]


@pytest.mark.usefixtures("fraud")
def test_a_refused_notification_stores_nothing(client: TestClient) -> None:
    r = client.post(
        "/v1/alertmanager", json=notification(alert(model="fraud"), alert(model="nosuchmodel"))
    )
    assert r.status_code == 404
    assert events(client) == []


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b'{"version": "4", "alerts": [', 400, "malformed_body"),
        (b"[1, 2]", 422, "validation_failed"),
        (b'{"version": "4", "status": "firing"}', 422, "validation_failed"),
    ],
)
def test_unusable_bodies_are_refused(
    client: TestClient, content: bytes, status: int, code: str
) -> None:
    r = client.post(
        "/v1/alertmanager", content=content, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_a_bad_alert_shape_names_the_alert(client: TestClient) -> None:
    broken = copy.deepcopy(alert(model="fraud"))
    broken["startsAt"] = "yesterday"
    r = client.post("/v1/alertmanager", json=notification(broken))
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "alerts.0.startsAt"


def test_a_model_without_webhook_is_accepted_and_skipped(client: TestClient) -> None:
    client.put("/v1/models/fraud", json={})
    r = client.post("/v1/alertmanager", json=notification())
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["outcome"] == "no_webhook"
    assert events(client) == []


def test_python_field_names_are_unknown_keys_not_fields(client: TestClient) -> None:
    # the document names generatorURL; a generator_url key is an unknown field, ignored
    sent = {k: v for k, v in alert(action="other").items() if k != "generatorURL"}
    body = notification(sent | {"generator_url": [], "starts_at": 5})
    r = client.post("/v1/alertmanager", json=body)
    assert r.status_code == 200, r.text


@pytest.fixture
def guarded(db_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=db_url, data_dir=Path("/nonexistent"), api_tokens=["tok-1"])
    svc: Services = build_services(settings, db_url, registry=CollectorRegistry())
    with TestClient(create_app(svc)) as test_client:
        yield test_client
    svc.engine.dispose()


def test_the_receiver_needs_the_bearer_token_when_tokens_are_on(guarded: TestClient) -> None:
    auth = {"Authorization": "Bearer tok-1"}
    assert guarded.put("/v1/models/fraud", json={"webhook": WEBHOOK}, headers=auth).is_success
    assert guarded.post("/v1/alertmanager", json=notification()).status_code == 401
    ok = guarded.post("/v1/alertmanager", json=notification(), headers=auth)
    assert ok.status_code == 200, ok.text
    assert guarded.get("/v1/webhooks").status_code == 200  # reading needs no token
