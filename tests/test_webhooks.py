"""The retraining webhook outbox, signing and dispatcher, against a real PostgreSQL.

HTTP goes through ``httpx.MockTransport``; time is passed in, so backoff needs no sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from monitor.config import Settings
from monitor.services import Services, build_services
from monitor.storage.models import ModelRecord
from monitor.storage.outbox import claim_next
from monitor.storage.results import Result, write_results
from monitor.webhooks.dispatcher import DispatchPolicy, dispatch_pending
from monitor.webhooks.metrics import register_webhook_metrics
from monitor.webhooks.outbox import Enqueued, enqueue_retrain
from monitor.webhooks.payload import canonical_body
from monitor.webhooks.signing import signature, verify
from monitor.webhooks.triggers import enqueue_from_results

SECRET = "s3cret-shared-key"
HOOK_URL = "http://receiver.invalid/hooks/retrain"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def register(services: Services, name: str = "fraud", *, cooldown: int = 86_400) -> ModelRecord:
    webhook = {"url": HOOK_URL, "secret": SECRET, "cooldown_seconds": cooldown}
    record, _ = services.models.put(
        name, task="classification", schema=None, prediction_kind=None, config={"webhook": webhook}
    )
    return record


def enqueue(
    services: Services,
    model: ModelRecord,
    *,
    event_id: UUID | None = None,
    now: datetime = T0,
    reason: Any = "drift",
) -> Enqueued:
    with services.engine.begin() as conn:
        return enqueue_retrain(
            conn,
            model,
            reason=reason,
            window="1h",
            model_version="3.2.0",
            evidence={"dataset_drift_share": 0.75},
            base_url="http://monitor.example:8000",
            event_id=event_id,
            now=now,
        )


class Receiver:
    """A MockTransport handler that answers ``statuses`` in turn (then 200) and keeps requests."""

    def __init__(self, *statuses: int | Exception) -> None:
        self.script = list(statuses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.script.pop(0) if self.script else 200
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, text="nope" if answer >= 300 else "ok")

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def rows(services: Services) -> list[dict[str, Any]]:
    with services.engine.connect() as conn:
        result = conn.execute(text("SELECT * FROM webhook_events ORDER BY created_at"))
        return [dict(r) for r in result.mappings()]


# -- signing --------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"event_id":"e1"}'
    expected = hmac.new(b"k" * 8, b"1764000000." + body, hashlib.sha256).hexdigest()
    assert signature("k" * 8, 1_764_000_000, body) == f"sha256={expected}"


def test_verify_accepts_only_the_right_secret_body_and_a_fresh_timestamp() -> None:
    body, ts = b'{"a":1}', 1_764_000_000
    good = signature(SECRET, ts, body)
    assert verify(SECRET, str(ts), body, good, now=ts + 10)
    assert not verify(SECRET, str(ts), b'{"a":2}', good, now=ts)
    assert not verify("another-secret", str(ts), body, good, now=ts)
    assert not verify(SECRET, str(ts), body, good, now=ts + 301)
    assert not verify(SECRET, "not-a-number", body, good, now=ts)
    assert not verify(SECRET, str(ts + 1), body, good, now=ts)


# -- delivery -------------------------------------------------------------------------------


def test_delivery_posts_the_spec_body_with_a_valid_signature(services: Services) -> None:
    model = register(services)
    event = enqueue(services, model)
    assert event.outcome == "enqueued"
    receiver = Receiver()

    assert dispatch_pending(services.context, transport=receiver.transport, now=T0) == {
        "delivered": 1
    }

    (request,) = receiver.requests
    assert str(request.url) == HOOK_URL
    assert request.headers["X-Monitor-Event-Id"] == str(event.event_id)
    assert request.headers["X-Monitor-Timestamp"] == str(int(T0.timestamp()))
    assert request.headers["Content-Type"] == "application/json"
    assert verify(
        SECRET,
        request.headers["X-Monitor-Timestamp"],
        request.content,
        request.headers["X-Monitor-Signature"],
        now=T0.timestamp(),
    )
    body = json.loads(request.content)
    assert body == {
        "event_id": str(event.event_id),
        "model": "fraud",
        "model_version": "3.2.0",
        "action": "retrain",
        "reason": "drift",
        "window": "1h",
        "created_at": T0.isoformat(),
        "evidence": {"dataset_drift_share": 0.75},
        "drift_url": "http://monitor.example:8000/v1/models/fraud/drift?window=1h",
    }
    assert request.content == canonical_body(body)
    (row,) = rows(services)
    assert (row["status"], row["attempts"], row["delivered_at"]) == ("delivered", 1, T0)
    assert (
        dispatch_pending(services.context, transport=receiver.transport, now=T0 + timedelta(1))
        == {}
    )


def test_enqueue_commits_or_rolls_back_with_the_callers_transaction(services: Services) -> None:
    model = register(services)

    def decide_then_fail() -> None:
        with services.engine.begin() as conn:
            enqueue_retrain(
                conn, model, reason="drift", window="1h", evidence={}, base_url="http://x", now=T0
            )
            raise RuntimeError("the job failed after deciding")

    with pytest.raises(RuntimeError):
        decide_then_fail()
    assert rows(services) == []
    # and the rolled-back attempt did not start a cooldown either
    assert enqueue(services, model).outcome == "enqueued"


def test_failures_retry_with_growing_backoff_then_deliver(services: Services) -> None:
    model = register(services)
    enqueue(services, model)
    receiver = Receiver(500, httpx.ConnectError("refused"), 503)
    policy = DispatchPolicy(base_delay_seconds=1, max_delay_seconds=3600)
    now, waits = T0, []
    for _ in range(3):
        outcomes = dispatch_pending(
            services.context,
            transport=receiver.transport,
            now=now,
            policy=policy,
            rng=random.Random(7),
        )
        assert outcomes == {"retry": 1}
        (row,) = rows(services)
        waits.append((row["next_attempt_at"] - now).total_seconds())
        # not due before its time
        assert dispatch_pending(services.context, transport=receiver.transport, now=now) == {}
        now = row["next_attempt_at"]
    assert 0.5 <= waits[0] <= 1
    assert 1 <= waits[1] <= 2
    assert 2 <= waits[2] <= 4
    assert "HTTP 503" in rows(services)[0]["last_error"]

    assert dispatch_pending(services.context, transport=receiver.transport, now=now) == {
        "delivered": 1
    }
    (row,) = rows(services)
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 4, None)
    # every attempt carried the same event id, each freshly signed
    assert {r.headers["X-Monitor-Event-Id"] for r in receiver.requests} == {str(row["event_id"])}


def test_dead_letter_after_max_attempts_then_retry_by_api(
    services: Services, client: TestClient
) -> None:
    model = register(services)
    event = enqueue(services, model)
    registry = CollectorRegistry()
    register_webhook_metrics(registry, services.db)
    receiver = Receiver(*[500] * 3)
    policy = DispatchPolicy(max_attempts=3, base_delay_seconds=1)
    now = T0
    seen = []
    for _ in range(3):
        seen.append(
            dispatch_pending(services.context, transport=receiver.transport, now=now, policy=policy)
        )
        now += timedelta(hours=2)
    assert seen == [{"retry": 1}, {"retry": 1}, {"dead": 1}]
    assert (
        dispatch_pending(services.context, transport=receiver.transport, now=now, policy=policy)
        == {}
    )

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("monitor_webhook_deliveries_total", outcome="retry") == 2
    assert sample("monitor_webhook_deliveries_total", outcome="dead") == 1
    assert sample("monitor_webhook_deliveries_total", outcome="delivered") == 0
    assert sample("monitor_webhook_events", status="dead") == 1

    dead = client.get("/v1/webhooks", params={"status": "dead"}).json()["events"]
    assert [(e["event_id"], e["attempts"], e["model"]) for e in dead] == [
        (str(event.event_id), 3, "fraud")
    ]
    assert dead[0]["last_error"].startswith("HTTP 500")
    assert client.get("/v1/webhooks", params={"status": "pending"}).json() == {"events": []}

    retried = client.post(f"/v1/webhooks/{event.event_id}/retry")
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    assert dispatch_pending(services.context, transport=receiver.transport, policy=policy) == {
        "delivered": 1
    }
    assert sample("monitor_webhook_events", status="dead") == 0
    assert sample("monitor_webhook_deliveries_total", outcome="delivered") == 1
    again = client.post(f"/v1/webhooks/{event.event_id}/retry")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    missing = client.post(f"/v1/webhooks/{uuid4()}/retry")
    assert missing.status_code == 404


def test_a_leased_event_is_skipped_by_other_dispatchers(services: Services) -> None:
    model = register(services)
    enqueue(services, model)
    with services.engine.begin() as first:
        claimed = claim_next(first, T0, T0 + timedelta(minutes=1))
        assert claimed is not None
        with services.engine.begin() as second:  # row locked: skipped, not waited for
            assert claim_next(second, T0, T0 + timedelta(minutes=1)) is None
    with services.engine.begin() as later:  # committed lease: not due until it ends
        assert claim_next(later, T0 + timedelta(seconds=59), T0) is None
        again = claim_next(later, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))
    assert again is not None
    assert again.attempts == 2


def test_a_model_without_webhook_enqueues_nothing(services: Services) -> None:
    record, _ = services.models.put(
        "plain", task="classification", schema=None, prediction_kind=None, config={}
    )
    assert enqueue(services, record).outcome == "no_webhook"
    assert rows(services) == []


# -- de-duplication and cooldown ------------------------------------------------------------


def test_the_same_event_id_is_stored_once(services: Services) -> None:
    model = register(services, cooldown=0)
    event_id = uuid4()
    assert enqueue(services, model, event_id=event_id).outcome == "enqueued"
    assert enqueue(services, model, event_id=event_id).outcome == "duplicate"
    assert len(rows(services)) == 1


def test_one_event_per_model_per_cooldown(services: Services) -> None:
    fraud, churn = register(services, "fraud", cooldown=3600), register(services, "churn")
    assert enqueue(services, fraud, now=T0).outcome == "enqueued"
    assert enqueue(services, fraud, now=T0 + timedelta(minutes=59)).outcome == "cooldown"
    assert enqueue(services, churn, now=T0).outcome == "enqueued"  # per model
    assert enqueue(services, fraud, now=T0 + timedelta(hours=1)).outcome == "enqueued"
    assert len(rows(services)) == 3


def test_cooldown_holds_between_concurrent_transactions(services: Services) -> None:
    """Two replicas deciding at once: the second waits for the first and then enqueues nothing."""
    model = register(services)
    outcome: list[str] = []

    def other_replica() -> None:
        outcome.append(enqueue(services, model, now=T0).outcome)

    with services.engine.begin() as conn:
        first = enqueue_retrain(
            conn, model, reason="alert", window="", evidence={}, base_url="http://x", now=T0
        )
        replica = threading.Thread(target=other_replica)
        replica.start()
        time.sleep(0.5)
        assert outcome == []  # blocked on the cooldown row
    replica.join(timeout=10)
    assert (first.outcome, outcome) == ("enqueued", ["cooldown"])
    assert len(rows(services)) == 1


# -- deciding from job results --------------------------------------------------------------


def drift_results(share: float, version: str = "3.2.0") -> list[Result]:
    """As the drift job writes them: the verdict's method, and PSI always reported beside it."""

    def feature(name: str, method: str, score: float, detected: bool, **extra: Any) -> list[Result]:
        labels = {"feature": name, "method": method}
        details = {"method": method, "score": score, "threshold": 0.1, **extra}
        psi = {"feature": name, "method": "psi"}
        return [
            Result(version, "1h", "feature_drift_score", score, labels, details),
            Result(version, "1h", "feature_drift_detected", float(detected), labels, details),
            Result(version, "1h", "feature_drift_score", 7.5, psi, {"kind": "numeric"}),
        ]

    return [
        *feature("amount", "wasserstein", 0.31, True),
        *feature("age", "wasserstein", 0.02, False),
        *feature("country", "chisquare", 41.0, True, pvalue=0.001, threshold=0.05),
        Result(version, "1h", "dataset_drift_share", share, {}, {"threshold": 0.5}),
    ]


def from_results(services: Services, model: ModelRecord, results: list[Result]) -> Any:
    with services.engine.begin() as conn:
        return enqueue_from_results(conn, services.context, model, T0, results)


def test_dataset_drift_in_results_enqueues_a_drift_event(services: Services) -> None:
    model = register(services)
    assert from_results(services, model, drift_results(0.4)) is None
    done = from_results(services, model, drift_results(0.5))
    assert done.outcome == "enqueued"
    (row,) = rows(services)
    assert (row["reason"], row["window"], row["model_version"]) == ("drift", "1h", "3.2.0")
    assert row["payload"]["evidence"] == {
        "dataset_drift_share": 0.5,
        "dataset_drift_threshold": 0.5,
        "drifted_features": [
            {"feature": "amount", "score": 0.31, "method": "wasserstein", "threshold": 0.1},
            {
                "feature": "country",
                "score": 41.0,
                "method": "chisquare",
                "threshold": 0.05,
                "pvalue": 0.001,
            },
        ],
    }
    assert row["payload"]["drift_url"] == "http://127.0.0.1:8000/v1/models/fraud/drift?window=1h"
    # the same run again (same window end): the same event, not a new one
    assert from_results(services, model, drift_results(0.5)).outcome == "duplicate"


def performance(accuracy: float, mae: float, samples: int = 500) -> list[Result]:
    details = {"samples": samples}
    return [
        Result("", "24h", "model_performance", accuracy, {"metric": "accuracy"}, details),
        Result("", "24h", "model_performance", mae, {"metric": "mae"}, details),
        Result("", "24h", "model_performance", 0.5, {"metric": "something_else"}, details),
    ]


def test_a_performance_drop_against_the_7_day_baseline_enqueues_an_event(
    services: Services,
) -> None:
    model = register(services)
    with services.engine.begin() as conn:
        for days, accuracy in [(8, 0.1), (3, 0.92), (2, 0.88), (1, 0.9)]:  # 8 days: too old
            write_results(conn, model.id, T0 - timedelta(days=days), performance(accuracy, 2.0))

    def check(results: list[Result]) -> Any:
        with services.engine.begin() as conn:
            return enqueue_from_results(conn, services.context, model, T0, results)

    assert check(performance(0.82, 2.1)) is None  # within 10 % of 0.9 and of 2.0
    assert check(performance(0.5, 3.0, samples=99)) is None  # too few labels to judge
    assert check(performance(0.80, 2.15)).outcome == "enqueued"
    (row,) = rows(services)
    assert (row["reason"], row["window"]) == ("performance", "24h")
    evidence = row["payload"]["evidence"]
    assert evidence["performance_drop"] == 0.1
    (figure,) = evidence["performance"]
    assert (figure["metric"], figure["value"], figure["samples"]) == ("accuracy", 0.8, 500)
    assert figure["baseline"] == pytest.approx(0.9)


# -- policy ---------------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = DispatchPolicy(base_delay_seconds=1, max_delay_seconds=3600)
    rng = random.Random(1)
    for attempt, full in [(1, 1), (2, 2), (5, 16), (12, 2048), (13, 3600), (40, 3600)]:
        delay = policy.backoff(attempt, rng).total_seconds()
        assert full / 2 <= delay <= full


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay_seconds": 0},
        {"base_delay_seconds": 10, "max_delay_seconds": 5},
        {"timeout_seconds": 0},
    ],
)
def test_policy_refuses_settings_that_cannot_work(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        DispatchPolicy(**kwargs)


def test_the_job_runner_enqueues_in_the_results_transaction(services: Services) -> None:
    from monitor.jobs.base import Window
    from monitor.jobs.runner import run_jobs

    model = register(services)

    def drifting(services: Services, model: ModelRecord, window: Window) -> list[Result]:
        return [replace(r, window=window.name) for r in drift_results(0.75)]

    report = run_jobs(services, "fraud", "drift", now=T0, jobs={"drift": drifting})
    assert report.failures == 0
    (row,) = rows(services)
    assert (row["reason"], row["model_id"]) == ("drift", model.id)
    # the next tick sees the same drift: held back by the model's cooldown
    run_jobs(services, "fraud", "drift", now=T0 + timedelta(minutes=1), jobs={"drift": drifting})
    assert len(rows(services)) == 1


# -- the default schedule: hours, not minutes ------------------------------------------------


class DownUntil:
    """A receiver that refuses every delivery (503) until ``up_at`` on the injected clock."""

    def __init__(self, up_at: datetime | None) -> None:
        self.up_at = up_at
        self.now = T0
        self.attempts: list[datetime] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.attempts.append(self.now)
        if self.up_at is None or self.now < self.up_at:
            return httpx.Response(503, text="down for maintenance")
        return httpx.Response(200, text="ok")


def drive(services: Services, receiver: DownUntil, *, rng_seed: int = 3) -> str:
    """Run the dispatcher at each due time (the injected clock) until the event settles."""
    rng = random.Random(rng_seed)
    for _ in range(200):
        outcomes = dispatch_pending(
            services.context, transport=httpx.MockTransport(receiver), now=receiver.now, rng=rng
        )
        (row,) = rows(services)
        if row["status"] != "pending":
            return str(row["status"])
        assert outcomes == {"retry": 1}
        receiver.now = row["next_attempt_at"]
    raise AssertionError("the event never settled")


def test_a_receiver_down_for_three_hours_still_gets_its_event(services: Services) -> None:
    enqueue(services, register(services))
    receiver = DownUntil(up_at=T0 + timedelta(hours=3))
    assert drive(services, receiver) == "delivered"
    assert receiver.attempts[-1] - T0 <= timedelta(hours=4)  # retried at least hourly


def test_the_default_schedule_backs_off_to_hourly_over_more_than_a_day(
    services: Services, client: TestClient
) -> None:
    event = enqueue(services, register(services))
    receiver = DownUntil(up_at=None)
    assert drive(services, receiver) == "dead"
    gaps = [b - a for a, b in itertools.pairwise(receiver.attempts)]
    assert gaps[0] <= timedelta(minutes=1)
    assert max(gaps) <= timedelta(hours=1)
    assert gaps == sorted(gaps[:6]) + gaps[6:]  # growing, then at the cap
    assert timedelta(hours=24) <= receiver.attempts[-1] - T0 <= timedelta(hours=31)
    assert len(receiver.attempts) == services.settings.webhook_max_attempts

    # the dead letter is kept and can be retried by hand
    assert client.get("/v1/webhooks", params={"status": "dead"}).json()["events"][0][
        "event_id"
    ] == str(event.event_id)
    assert client.post(f"/v1/webhooks/{event.event_id}/retry").status_code == 200
    receiver.up_at = receiver.now
    assert dispatch_pending(services.context, transport=httpx.MockTransport(receiver)) == {
        "delivered": 1
    }


def test_the_schedule_is_configurable(settings: Settings, db_url: str) -> None:
    configured = settings.model_copy(
        update={
            "webhook_max_attempts": 4,
            "webhook_base_delay_seconds": 5.0,
            "webhook_max_delay_seconds": 10.0,
        }
    )
    services = build_services(configured, db_url, registry=CollectorRegistry())
    try:
        enqueue(services, register(services))
        receiver = DownUntil(up_at=None)
        assert drive(services, receiver) == "dead"
    finally:
        services.engine.dispose()
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(receiver.attempts)]
    assert len(receiver.attempts) == 4
    assert 4 <= gaps[0] <= 5
    assert 8 <= gaps[1] <= 10
    assert 8 <= gaps[2] <= 10


def test_the_policy_span_holds_for_the_defaults() -> None:
    shortest, nominal = DispatchPolicy().span()
    assert shortest >= timedelta(hours=24)
    assert nominal <= timedelta(hours=31)


def test_settings_refuse_a_base_delay_above_the_cap() -> None:
    with pytest.raises(ValueError, match="MONITOR_WEBHOOK_BASE_DELAY_SECONDS"):
        Settings(webhook_base_delay_seconds=7200, webhook_max_delay_seconds=3600)
