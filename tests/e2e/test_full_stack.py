"""The whole retraining path on real processes, all on 127.0.0.1.

``monitor serve`` (API, scheduler, dispatcher) on the test database; a model whose webhook points
at a local sink that fails twice with 500 before it accepts; drifted traffic; the drift job; a
real Prometheus scraping ``/metrics`` with the shipped model-quality rules (``for: 0s``); a real
Alertmanager routing ``action="retrain"`` to ``POST /v1/alertmanager`` with the bearer token.
Both the drift job and the MLDatasetDrift alert ask for retraining; the model's cooldown must
turn that into exactly one event, delivered once with a valid signature after two failures.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.alerts.configs import alertmanager_config
from monitor.alerts.render import dump, rule_file
from monitor.alerts.rules import (
    Alert,
    Group,
    RuleSettings,
    model_quality_group,
    rollout_group,
    slo_group,
)
from monitor.webhooks.signing import verify
from tests.support import promstack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
MODEL = "fraud"
SECRET = "e2e-shared-secret"
TOKEN = "e2e-api-token"
FAILURES_BEFORE_SUCCESS = 2
DEADLINE_SECONDS = 90.0
START_SECONDS = 30.0


# -- the receiving end ----------------------------------------------------------------------


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    received_at: float
    answered: int


@dataclass
class Sink:
    """An HTTP endpoint that answers 500 to the first ``failures`` requests, then 200."""

    failures: int
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/retrain"

    def record(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            answered = 500 if len(self.deliveries) < self.failures else 200
            self.deliveries.append(Delivery(headers, body, time.time(), answered))
            return answered

    def snapshot(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)


def _handler(sink: Sink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = sink.record({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def sink() -> Iterator[Sink]:
    target = Sink(failures=FAILURES_BEFORE_SUCCESS)
    target.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(target))
    thread = threading.Thread(target=target.server.serve_forever, daemon=True)
    thread.start()
    yield target
    target.server.shutdown()
    target.server.server_close()
    thread.join(timeout=10)


# -- the service ----------------------------------------------------------------------------


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    client: httpx.Client

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait(what: str, ready: Callable[[], bool], timeout: float, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout:.0f}s\n--- log ---\n{logs()[-6000:]}")


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[Service]:
    port = promstack.free_port()
    log_path = tmp_path / "monitor-serve.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")},
        "MONITOR_DATABASE_URL": db_url,
        "MONITOR_API_TOKENS": TOKEN,
        "MONITOR_HOST": "127.0.0.1",
        "MONITOR_PORT": str(port),
        "MONITOR_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "MONITOR_DATA_DIR": str(tmp_path / "data"),
        # the drift job runs when the test asks; scheduled ticks would only add cooldown hits
        "MONITOR_SCHEDULER_INTERVAL_SECONDS": "3600",
        # the sink fails twice: retry within seconds, not the default schedule's minutes
        "MONITOR_WEBHOOK_BASE_DELAY_SECONDS": "1",
        "MONITOR_WEBHOOK_MAX_DELAY_SECONDS": "2",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    svc = Service(process, port, log_path, client)

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"monitor serve exited with {process.returncode}:\n{svc.logs()[-6000:]}")
        try:
            return client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        _wait("monitor serve becoming ready", ready, START_SECONDS, svc.logs)
        yield svc
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


# -- data -----------------------------------------------------------------------------------


def _rows(rng: np.random.Generator, n: int, *, drifted: bool) -> list[dict[str, Any]]:
    amounts = rng.normal(150.0 if drifted else 100.0, 10.0, n)
    countries = ["BR", "US", "IN"] if drifted else ["DE", "FR", "US"]
    picks = rng.choice(countries, size=n, p=[0.6, 0.3, 0.1])
    return [
        {"amount": round(float(a), 3), "country": str(c)}
        for a, c in zip(amounts, picks, strict=True)
    ]


def configure_model(service: Service, sink: Sink, rng: np.random.Generator) -> None:
    """MODEL with two features, a 1h window, the sink as its webhook, and 600 reference rows."""
    config = {
        "features": [
            {"name": "amount", "kind": "numeric"},
            {"name": "country", "kind": "categorical"},
        ],
        "windows": ["1h"],
        "webhook": {"url": sink.url, "secret": SECRET, "cooldown_seconds": 86_400},
    }
    r = service.client.put(f"/v1/models/{MODEL}", json=config)
    assert r.status_code in (200, 201), r.text
    reference = "\n".join(
        json.dumps({"features": f, "prediction": 0.1}) for f in _rows(rng, 600, drifted=False)
    )
    r = service.client.post(
        f"/v1/models/{MODEL}/reference",
        content=reference.encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 201, r.text


def set_up_drifting_model(service: Service, sink: Sink) -> None:
    rng = np.random.default_rng(20261123)
    configure_model(service, sink, rng)

    now = datetime.now(UTC)
    predictions = [
        {
            "prediction_id": f"p{i}",
            "model": MODEL,
            "model_version": "1.0.0",
            "timestamp": (now - timedelta(seconds=int(rng.integers(60, 1800)))).isoformat(),
            "features": features,
            "prediction": 0.9,
            "latency_ms": 20.0,
        }
        for i, features in enumerate(_rows(rng, 600, drifted=True))
    ]
    r = service.client.post("/v1/predictions", json={"predictions": predictions})
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == len(predictions)


def metric_values(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        frozenset(s.labels.items()): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def webhook_notifications(alertmanager: promstack.Handle) -> tuple[float, float]:
    """(notifications, failed notifications) Alertmanager sent to webhook receivers."""
    text = alertmanager.get("/metrics").text
    sent = metric_values(text, "alertmanager_notifications_total")
    failed = metric_values(text, "alertmanager_notifications_failed_total")

    def webhook(values: dict[frozenset[tuple[str, str]], float]) -> float:
        return sum(v for labels, v in values.items() if ("integration", "webhook") in labels)

    return webhook(sent), webhook(failed)


# -- Prometheus and Alertmanager ------------------------------------------------------------


def fast_rules(tmp_path: Path) -> Path:
    """The shipped model-quality rules with ``for: 0s``, so the test need not wait 30 minutes."""
    settings = RuleSettings()
    group = model_quality_group(settings)
    quick = dataclasses.replace(
        group,
        rules=tuple(
            dataclasses.replace(r, for_="0s") if isinstance(r, Alert) else r for r in group.rules
        ),
    )
    path = tmp_path / "model.rules.yml"
    path.write_text(dump(rule_file(quick, settings)))
    return path


def start_alertmanager(tmp_path: Path, service: Service) -> promstack.Handle:
    token_file = tmp_path / "monitor-api-token"
    token_file.write_text(TOKEN)
    config = alertmanager_config(f"{service.url}/v1/alertmanager", token_file=str(token_file))
    config["route"].update(group_wait="1s", group_interval="1s")
    for route in config["route"]["routes"]:
        route.pop("group_wait", None)
    return promstack.start_alertmanager(tmp_path, config)


def start_prometheus(
    tmp_path: Path, service: Service, alertmanager: promstack.Handle
) -> promstack.Handle:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "ml-monitor",
                "static_configs": [{"targets": [f"127.0.0.1:{service.port}"]}],
            }
        ],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager.url.removeprefix("http://")]}]}
            ]
        },
    }
    return promstack.start_prometheus(tmp_path, config, [fast_rules(tmp_path)])


# -- the test -------------------------------------------------------------------------------


def test_drift_alert_and_drift_job_trigger_one_signed_retraining_call(
    tmp_path: Path, service: Service, sink: Sink
) -> None:
    set_up_drifting_model(service, sink)
    report = service.client.post("/v1/jobs/run", params={"model": MODEL, "job": "drift"})
    assert report.status_code == 200, report.text
    assert report.json()["failures"] == 0, report.text
    shares = metric_values(service.client.get("/metrics").text, "ml_dataset_drift_share")
    assert any(v >= 0.5 for v in shares.values()), shares

    with (
        start_alertmanager(tmp_path, service) as alertmanager,
        start_prometheus(tmp_path, service, alertmanager) as prometheus,
    ):

        def logs() -> str:
            seen = [(d.answered, d.headers.get("x-monitor-event-id")) for d in sink.snapshot()]
            return "\n".join(
                [
                    f"sink: {seen}",
                    f"--- monitor serve ---\n{service.logs()[-4000:]}",
                    f"--- prometheus ---\n{prometheus.logs()[-2000:]}",
                    f"--- alertmanager ---\n{alertmanager.logs()[-2000:]}",
                ]
            )

        def firing() -> bool:
            alert = f'ALERTS{{alertname="MLDatasetDrift", alertstate="firing", model="{MODEL}"}}'
            return bool(prometheus.query(alert))

        def done() -> bool:
            delivered = any(d.answered == 200 for d in sink.snapshot())
            return delivered and webhook_notifications(alertmanager)[0] >= 1

        started = time.monotonic()
        _wait("the MLDatasetDrift alert firing", firing, DEADLINE_SECONDS, logs)
        remaining = DEADLINE_SECONDS - (time.monotonic() - started)
        _wait("the alert notification and the webhook delivery", done, remaining, logs)
        # Long enough for a second event, if there were one, to reach the sink.
        time.sleep(3 * 5 + 2)
        notified, notify_failures = webhook_notifications(alertmanager)
        final_logs = logs()

    deliveries = sink.snapshot()
    assert [d.answered for d in deliveries] == [500, 500, 200], final_logs
    event_ids = {d.headers["x-monitor-event-id"] for d in deliveries}
    assert len(event_ids) == 1, final_logs
    for d in deliveries:
        assert verify(
            SECRET,
            d.headers["x-monitor-timestamp"],
            d.body,
            d.headers["x-monitor-signature"],
            now=d.received_at,
        ), d.headers
        assert not verify(
            "not-the-secret",
            d.headers["x-monitor-timestamp"],
            d.body,
            d.headers["x-monitor-signature"],
            now=d.received_at,
        )
    body = json.loads(deliveries[-1].body)
    assert body["event_id"] == event_ids.pop()
    # the drift job ran before Prometheus started, so its event won; the alert's was held back
    assert (body["model"], body["reason"], body["window"]) == (MODEL, "drift", "1h")
    drifted = body["evidence"]["drifted_features"]
    assert {f["feature"] for f in drifted} == {"amount", "country"}, drifted
    assert all(None not in (f["score"], f["method"], f["threshold"]) for f in drifted), drifted
    assert body["evidence"]["dataset_drift_share"] >= body["evidence"]["dataset_drift_threshold"]
    assert body["drift_url"].startswith(f"{service.url}/v1/models/{MODEL}/drift")

    # Alertmanager reached the receiver, which the cooldown kept from enqueueing a second event.
    assert notified >= 1, final_logs
    assert notify_failures == 0, final_logs
    assert '"POST /v1/alertmanager HTTP/1.1" 200' in service.logs()
    events = service.client.get("/v1/webhooks", params={"model": MODEL}).json()["events"]
    assert [(e["status"], e["attempts"]) for e in events] == [("delivered", 3)], events
    metrics = service.client.get("/metrics").text
    deliveries_total = {
        dict(labels)["outcome"]: value
        for labels, value in metric_values(metrics, "monitor_webhook_deliveries_total").items()
    }
    assert deliveries_total == {"delivered": 1, "retry": 2, "dead": 0}


# -- rollout incidents ----------------------------------------------------------------------

ROLLOUT_DEADLINE_SECONDS = 150.0
CANARY_VERSION = "1.1.0"
ROLLBACK_ALERTS = {"MLVariantLatencyWorse", "MLVariantErrorsWorse", "MLDeploySkew"}
PEOPLE_ALERTS = {"MLRollbackNotLoaded", "MLRollbackStillFailing"}


def fast_group(tmp_path: Path, group: Group, settings: RuleSettings) -> Path:
    """A shipped rule group with ``for: 0s``."""
    quick = dataclasses.replace(
        group,
        rules=tuple(
            dataclasses.replace(r, for_="0s") if isinstance(r, Alert) else r for r in group.rules
        ),
    )
    path = tmp_path / f"{group.file}.rules.yml"
    path.write_text(dump(rule_file(quick, settings)))
    return path


def set_up_a_bad_canary(service: Service, sink: Sink) -> None:
    """fraud 1.0.0 in production like its reference; canary 1.1.0 slower (400 ms against
    20 ms), failing 10% (against none) and fed drifted features; chat rolled back 20 minutes
    ago with its last model load before that."""
    rng = np.random.default_rng(20261203)
    configure_model(service, sink, rng)
    now = datetime.now(UTC)

    def record(i: int, features: dict[str, Any], **fields: Any) -> dict[str, Any]:
        ts = now - timedelta(seconds=int(rng.integers(60, 1800)))
        return {
            "model": MODEL,
            "timestamp": ts.isoformat(),
            "features": features,
            "prediction": 0.9,
            **fields,
        }

    production = [
        record(i, f, prediction_id=f"prod{i}", model_version="1.0.0", latency_ms=20.0)
        for i, f in enumerate(_rows(rng, 400, drifted=False))
    ]
    canary = [
        record(
            i,
            f,
            prediction_id=f"canary{i}",
            model_version=CANARY_VERSION,
            variant="canary",
            latency_ms=400.0,
            status="timeout" if i % 10 == 0 else "ok",
        )
        for i, f in enumerate(_rows(rng, 300, drifted=True))
    ]
    r = service.client.post("/v1/predictions", json={"predictions": production + canary})
    assert r.status_code == 200, r.text
    # inside the serving job's window (it ends at the current minute), so chat has objectives
    post_failing_chat_predictions(service, "before", minutes_ago=2)
    for event, minutes in (("model_loaded", 60), ("rolled_back", 20)):
        ts = (now - timedelta(minutes=minutes)).isoformat()
        body = {"model": "chat", "event": event, "model_version": "2.0", "timestamp": ts}
        if event == "model_loaded":
            body["load_seconds"] = 30.0
        assert service.client.post("/v1/events", json=body).status_code == 201
    for model, job in ((MODEL, "serving"), (MODEL, "drift"), ("chat", "serving")):
        report = service.client.post("/v1/jobs/run", params={"model": model, "job": job})
        assert report.status_code == 200, report.text
        assert report.json()["failures"] == 0, report.text


def post_failing_chat_predictions(service: Service, batch: str, minutes_ago: int = 0) -> None:
    """20 chat predictions, half of them failed: far past chat's 99.9% availability."""
    now = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    records = [
        {
            "prediction_id": f"chat-{batch}-{i}",
            "model": "chat",
            "model_version": "2.0",
            "timestamp": now,
            "features": {"amount": 1.0},
            "status": "error" if i % 2 else "ok",
            "latency_ms": 15.0,
        }
        for i in range(20)
    ]
    r = service.client.post("/v1/predictions", json={"predictions": records})
    assert r.status_code == 200, r.text


def test_rollout_alerts_reach_alertmanager_and_a_bad_canary_is_rolled_back_by_webhook(
    tmp_path: Path, service: Service, sink: Sink
) -> None:
    """The shipped rollout rules on a real Prometheus scraping the service: the canary's
    latency and error alerts and the deploy-skew alert reach Alertmanager, which routes their
    action=rollback to POST /v1/alertmanager; each becomes one signed webhook call with
    "action": "rollback", not held by the cooldown the drift job's retraining event started
    (all delivered after the sink's two 500s). The failed rollback of chat (no model_loaded
    since) reaches Alertmanager for people, not the webhook."""
    set_up_a_bad_canary(service, sink)
    metrics = service.client.get("/metrics").text
    deltas = metric_values(metrics, "ml_variant_latency_p95_delta_seconds")
    assert any(v > 0.3 for v in deltas.values()), deltas
    settings = RuleSettings()
    rules = [fast_group(tmp_path, g, settings) for g in (slo_group(), rollout_group(settings))]
    with start_alertmanager(tmp_path, service) as alertmanager:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "ml-monitor",
                    "static_configs": [{"targets": [f"127.0.0.1:{service.port}"]}],
                }
            ],
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager.address]}]}]
            },
        }
        with promstack.start_prometheus(tmp_path, config, rules) as prometheus:
            batches = iter(range(1000))

            def logs() -> str:
                seen = [(d.answered, d.headers.get("x-monitor-event-id")) for d in sink.snapshot()]
                firing = prometheus.query('ALERTS{alertstate="firing"}')
                return "\n".join(
                    [
                        f"--- monitor serve ---\n{service.logs()[-2000:]}",
                        f"--- prometheus ---\n{prometheus.logs()[-1000:]}",
                        f"--- alertmanager ---\n{alertmanager.logs()[-1000:]}",
                        f"sink: {seen}",
                        f"firing: {[a['metric'] for a in firing]}",
                    ]
                )

            def received() -> dict[str, dict[str, Any]]:
                alerts = alertmanager.get("/api/v2/alerts").json()
                return {a["labels"]["alertname"]: a for a in alerts}

            def all_received() -> bool:
                # chat keeps failing after its rollback: its counters must move under scrape
                batch = next(batches)
                if batch % 10 == 0:
                    post_failing_chat_predictions(service, str(batch))
                return set(received()) >= (ROLLBACK_ALERTS | PEOPLE_ALERTS)

            def delivered() -> bool:
                ok = {d.headers["x-monitor-event-id"] for d in sink.snapshot() if d.answered == 200}
                return len(ok) >= len(ROLLBACK_ALERTS) + 1  # and the drift job's retraining

            _wait(
                "the rollout alerts reaching Alertmanager",
                all_received,
                ROLLOUT_DEADLINE_SECONDS,
                logs,
            )
            in_alertmanager = received()
            _wait("the rollback webhooks", delivered, ROLLOUT_DEADLINE_SECONDS, logs)
            time.sleep(3)  # a duplicate, if there were one, would arrive now
            final_logs = logs()

    for name in ROLLBACK_ALERTS:
        alert = in_alertmanager[name]
        assert alert["labels"]["action"] == "rollback", alert
        assert {r["name"] for r in alert["receivers"]} == {"ml-monitor-retrain", "default"}
        assert alert["labels"]["model_version"] == CANARY_VERSION, alert
    canary = in_alertmanager["MLVariantLatencyWorse"]
    assert canary["labels"]["variant"] == "canary"
    assert "above production's" in canary["annotations"]["description"]
    not_loaded = in_alertmanager["MLRollbackNotLoaded"]
    assert not_loaded["labels"]["model"] == "chat"
    assert [r["name"] for r in not_loaded["receivers"]] == ["default"]
    still_failing = in_alertmanager["MLRollbackStillFailing"]
    assert {k: still_failing["labels"][k] for k in ("model", "slo", "severity")} == {
        "model": "chat",
        "slo": "availability",
        "severity": "page",
    }
    assert [r["name"] for r in still_failing["receivers"]] == ["pager"]

    deliveries = sink.snapshot()
    assert [d.answered for d in deliveries[:2]] == [500, 500], final_logs
    bodies: dict[str, dict[str, Any]] = {}
    for d in deliveries:
        assert verify(
            SECRET,
            d.headers["x-monitor-timestamp"],
            d.body,
            d.headers["x-monitor-signature"],
            now=d.received_at,
        ), d.headers
        bodies[d.headers["x-monitor-event-id"]] = json.loads(d.body)
    # the drift job asked for retraining first (the canary's features drifted), which starts
    # the model's cooldown; the rollbacks still go out, one per alert
    by_action: dict[str, list[dict[str, Any]]] = {}
    for body in bodies.values():
        by_action.setdefault(body["action"], []).append(body)
    ((retrain,),) = [by_action["retrain"]]
    assert (retrain["reason"], retrain["model_version"]) == ("drift", CANARY_VERSION)
    rollbacks = by_action["rollback"]
    names = sorted(b["evidence"]["alert"]["name"] for b in rollbacks)
    assert names == sorted(ROLLBACK_ALERTS), final_logs
    for body in rollbacks:
        assert body["reason"] == "alert", body
        assert (body["model"], body["model_version"]) == (MODEL, CANARY_VERSION), body
    events = service.client.get("/v1/webhooks", params={"model": MODEL}).json()["events"]
    assert [e["status"] for e in events] == ["delivered"] * (len(ROLLBACK_ALERTS) + 1), events


def test_a_latency_spike_at_peak_traffic_reaches_alertmanager(tmp_path: Path) -> None:
    """26 hours of llm's hourly p95 and traffic backfilled into a real Prometheus (200 ms, then
    600 ms for the last half hour, at a steady 10 predictions/s): the shipped
    MLLatencySpikeAtPeak compares now with the same hour yesterday and reaches Alertmanager,
    routed to people (no action)."""
    now = int(time.time()) // 60 * 60
    start = now - 26 * 3600
    labels = 'model="llm",model_version="7b-v2",variant="production",window="1h"'
    lines = ["# TYPE ml_prediction_latency_seconds gauge"]
    for t in range(start, now + 1, 60):
        p95 = 0.6 if t > now - 1800 else 0.2
        lines.append(f'ml_prediction_latency_seconds{{{labels},quantile="0.95"}} {p95} {t}')
    lines.append("# TYPE ml_predictions_per_second gauge")
    lines += [f"ml_predictions_per_second{{{labels}}} 10 {t}" for t in range(start, now + 1, 60)]
    data = promstack.backfill_openmetrics(tmp_path, "\n".join([*lines, "# EOF", ""]))
    settings = RuleSettings()
    rules = fast_group(tmp_path, rollout_group(settings), settings)
    am_config = alertmanager_config("http://127.0.0.1:9/v1/alertmanager", token_file=None)
    am_config["route"].update(group_wait="1s", group_interval="1s")
    with promstack.start_alertmanager(tmp_path, am_config) as alertmanager:
        config = {
            "global": {"scrape_interval": "1m", "evaluation_interval": "1s"},
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager.address]}]}]
            },
        }
        with promstack.start_prometheus(tmp_path, config, [rules], storage=data) as prometheus:

            def received() -> list[dict[str, Any]]:
                alerts: list[dict[str, Any]] = alertmanager.get("/api/v2/alerts").json()
                return [a for a in alerts if a["labels"]["alertname"] == "MLLatencySpikeAtPeak"]

            _wait(
                "MLLatencySpikeAtPeak reaching Alertmanager",
                lambda: bool(received()),
                ROLLOUT_DEADLINE_SECONDS,
                lambda: prometheus.logs()[-3000:] + alertmanager.logs()[-2000:],
            )
            (alert,) = received()
    assert {k: alert["labels"][k] for k in ("model", "variant", "severity")} == {
        "model": "llm",
        "variant": "production",
        "severity": "ticket",
    }
    assert "action" not in alert["labels"]
    assert "0.600 s" in alert["annotations"]["description"]
    assert [r["name"] for r in alert["receivers"]] == ["default"]
