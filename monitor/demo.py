"""``monitor demo``: the whole loop on synthetic traffic, on the embedded PostgreSQL by default.

Two models (``fraud``, a classifier with a canary version, and ``eta``, a regressor) get a
training reference, two hours of backfilled traffic whose last 30 minutes drift in some
features, delayed labels, slower and more error-prone canary traffic, and a model-load event.
The jobs run, the drift shows up at ``/metrics`` and ``/v1/models/{model}/drift``, and live
traffic continues for ``--minutes`` while the scheduler keeps computing.
"""

from __future__ import annotations

import csv
import io
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import uvicorn

from monitor.api.app import create_app
from monitor.client import MonitorClient
from monitor.config import Settings
from monitor.demo_report import figures
from monitor.embedded import running_url
from monitor.errors import ConfigError
from monitor.jobs.runner import run_jobs
from monitor.jobs.scheduler import build_scheduler
from monitor.ports import ensure_port_free
from monitor.runtime import database_url
from monitor.server import prepare
from monitor.services import Services, build_services
from monitor.shutdown import Terminated

DEMO_MODELS = ("fraud", "eta")
BACKFILL = timedelta(hours=2)
HISTORY_STEP = timedelta(minutes=10)
DRIFT_STARTS = timedelta(minutes=30)  # before now
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "ES"]
CHANNELS = ["web", "app", "pos"]
DEVICES = ["ios", "android", "desktop"]


def fraud_features(rng: np.random.Generator, drifted: bool) -> dict[str, Any]:
    shift = 1.8 if drifted else 1.0
    country_p = [0.1, 0.1, 0.5, 0.1, 0.1, 0.1] if drifted else [0.3, 0.2, 0.2, 0.1, 0.1, 0.1]
    return {
        "amount": round(float(rng.lognormal(3.5, 0.8)) * shift, 2),
        "age_days": int(rng.integers(1, 3000)),
        "txn_per_day": round(float(rng.gamma(2.0, 1.5 * shift)), 2),
        "distance_km": round(float(rng.exponential(20 + (60 if drifted else 0))), 1),
        "hour": int(rng.integers(0, 24)),
        "risk_score": round(float(rng.beta(2, 5)), 3),
        "country": str(rng.choice(COUNTRIES, p=country_p)),
        "channel": str(rng.choice(CHANNELS, p=[0.2, 0.6, 0.2] if drifted else [0.5, 0.3, 0.2])),
        "device": str(rng.choice(DEVICES)),
    }


def eta_features(rng: np.random.Generator, drifted: bool) -> dict[str, Any]:
    return {
        "distance_km": round(float(rng.gamma(3.0, 2.0 + (2.5 if drifted else 0))), 2),
        "traffic_index": round(float(rng.uniform(0, 1)), 3),
        "stops": int(rng.integers(0, 4)),
        "hour": int(rng.integers(0, 24)),
        "city": str(rng.choice(["berlin", "paris", "madrid"])),
    }


def fraud_prediction(features: dict[str, Any], rng: np.random.Generator) -> tuple[float, int]:
    logit = 0.02 * features["amount"] + 0.03 * features["distance_km"] - 4 + rng.normal(0, 0.5)
    score = float(1 / (1 + np.exp(-logit)))
    truth = int(rng.random() < (score if features["country"] != "US" else min(1, score * 1.6)))
    return round(score, 4), truth


class Simulator:
    def __init__(self, client: MonitorClient, seed: int = 7) -> None:
        self.client = client
        self.rng = np.random.default_rng(seed)
        self.pending_labels: list[tuple[float, str, str, float]] = []

    def one(self, when: float, drifted: bool) -> None:
        canary = self.rng.random() < 0.15
        version, variant = ("3.3.0-rc1", "canary") if canary else ("3.2.0", "production")
        features = fraud_features(self.rng, drifted)
        score, truth = fraud_prediction(features, self.rng)
        latency = float(self.rng.lognormal(3.0 + (0.6 if canary else 0), 0.3))
        error = self.rng.random() < (0.06 if canary else 0.01)
        pid = self.client.log(
            "fraud",
            features,
            score,
            timestamp=when,
            model_version=version,
            variant=variant,
            latency_ms=round(latency, 2),
            status="error" if error else "ok",
            gpu_seconds=0.002,
        )
        self.pending_labels.append((when + 600, "fraud", pid, truth))
        eta = eta_features(self.rng, drifted)
        predicted = eta["distance_km"] * 2.2 + eta["stops"] * 3
        eta_pid = self.client.log(
            "eta",
            eta,
            round(predicted, 2),
            timestamp=when,
            model_version="1.4.0",
            latency_ms=round(float(self.rng.lognormal(2.2, 0.2)), 2),
        )
        actual = predicted + self.rng.normal(0, 2 + (4 if drifted else 0))
        self.pending_labels.append((when + 900, "eta", eta_pid, round(float(actual), 2)))

    def release_labels(self, now: float) -> int:
        due = [item for item in self.pending_labels if item[0] <= now]
        self.pending_labels = [item for item in self.pending_labels if item[0] > now]
        for when, model, pid, truth in due:
            self.client.label(model, pid, truth, timestamp=when)
        return len(due)


def fraud_reference(rng: np.random.Generator) -> dict[str, Any]:
    features = fraud_features(rng, False)
    score, truth = fraud_prediction(features, rng)
    return {**features, "prediction": score, "label": truth}


def eta_reference(rng: np.random.Generator) -> dict[str, Any]:
    features = eta_features(rng, False)
    predicted = features["distance_km"] * 2.2 + features["stops"] * 3
    actual = predicted + rng.normal(0, 2)
    return {**features, "prediction": round(predicted, 2), "label": round(float(actual), 2)}


def _setup_models(http: httpx.Client, rng: np.random.Generator, now: float) -> None:
    http.put(
        "/v1/models/fraud",
        json={
            "task": "classification",
            "windows": ["1h", "24h"],
            "cost": {"currency": "USD", "gpu_hour_price": 2.4},
        },
    ).raise_for_status()
    http.put(
        "/v1/models/eta",
        json={
            "task": "regression",
            "windows": ["1h", "24h"],
            "cost": {"currency": "USD", "gpu_hour_price": 0.9, "gpus": 1, "replicas": 2},
        },
    ).raise_for_status()
    # training data with the model's outputs and the truth: prediction and label drift too
    for model, make in (("fraud", fraud_reference), ("eta", eta_reference)):
        body = _csv([make(rng) for _ in range(4000)])
        r = http.post(
            f"/v1/models/{model}/reference", content=body, headers={"Content-Type": "text/csv"}
        )
        r.raise_for_status()
        print(f"  reference for {model}: {r.json()['rows']} training rows with predictions")
    # the canary came up just before the backfilled traffic starts
    loaded = datetime.fromtimestamp(now - BACKFILL.total_seconds() - 60, UTC).isoformat()
    canary = {"model": "fraud", "model_version": "3.3.0-rc1", "variant": "canary"}
    http.post(
        "/v1/events",
        json={**canary, "event": "model_loaded", "load_seconds": 41.5, "timestamp": loaded},
    ).raise_for_status()
    http.post(
        "/v1/events", json={**canary, "event": "deployed", "timestamp": loaded}
    ).raise_for_status()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _backfill(sim: Simulator, now: float) -> None:
    start = now - BACKFILL.total_seconds()
    drift_from = now - DRIFT_STARTS.total_seconds()
    steps = 3000
    for i in range(steps):
        when = start + i * BACKFILL.total_seconds() / steps
        sim.one(when, drifted=when >= drift_from)
    sim.release_labels(now)
    sim.client.flush(120)


def _history(services: Services, now: float) -> None:
    """The jobs as the scheduler would have run them over the backfilled hours (every 10
    minutes), so the status page's sparklines and the results history have a past."""
    end = datetime.fromtimestamp(now, UTC)
    steps = int(BACKFILL / HISTORY_STEP)
    for i in range(steps, 0, -1):
        run_jobs(services, None, None, now=end - i * HISTORY_STEP)


def _show(http: httpx.Client, base: str) -> None:
    ran = http.post("/v1/jobs/run")
    ran.raise_for_status()
    runs = ran.json().get("runs", [])
    print(f"  jobs ran: {len(runs)} (job, model) runs")
    drift = http.get("/v1/models/fraud/drift", params={"window": "1h", "version": "3.2.0"})
    drift.raise_for_status()
    body = drift.json()
    share = body.get("dataset_drift_share")
    print(
        f"\n  fraud 3.2.0, last hour: share of drifted features {share:.2f}"
        if share is not None
        else "\n  fraud 3.2.0, last hour: no drift verdict yet"
    )
    for f in body.get("features", []):
        flag = "DRIFT" if f.get("detected") else "  -  "
        print(
            f"    {flag} {f['feature']:<12} {f['method']:<14} {f['score']:.3f} "
            f"(threshold {f['threshold']})"
        )
    for note in body.get("notes", []):
        print(f"    note: {note}")
    print()
    for line in figures(http.get("/metrics").text, DEMO_MODELS, "1h", base):
        print(line)
    print()


def _serve(app: Any, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError(f"could not start the API on 127.0.0.1:{port} (port in use?)")
    return server, thread


def demo_settings(settings: Settings, port: int, *, fresh: bool = True) -> Settings:
    """The demo's own data dir (``<MONITOR_DATA_DIR>/demo``), emptied first when ``fresh``: a
    second run does not stack on the first, and models made by hand elsewhere stay out of it."""
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    if settings.database_url:
        print("  demo data: in the MONITOR_DATABASE_URL database (not wiped; models fraud, eta)")
        return settings
    data_dir = (settings.data_dir / "demo").expanduser().resolve()
    if fresh and data_dir.exists():
        if running_url(data_dir) is not None:
            raise ConfigError(
                f"a demo is already running on {data_dir}; stop it first, or join it with "
                "--no-fresh"
            )
        shutil.rmtree(data_dir)
    how = "emptied at every start; --no-fresh keeps it" if fresh else "kept (--no-fresh)"
    print(f"  demo data: {data_dir} ({how}; rm -rf {data_dir} removes it)")
    return settings.model_copy(update={"data_dir": data_dir})


def run_demo(
    settings: Settings,
    *,
    minutes: float = 10.0,
    port: int = 8000,
    keep_running: bool = False,
    fresh: bool = True,
) -> None:
    print("ml-monitor demo")
    ensure_port_free("127.0.0.1", port)
    settings = demo_settings(settings, port, fresh=fresh)
    with database_url(settings) as url:
        services = build_services(settings, url)
        prepare(services)
        server, thread = _serve(create_app(services), port)
        scheduler = build_scheduler(services)
        scheduler.start()
        base = f"http://127.0.0.1:{port}"
        print(f"  API on {base}, status page {base}/")
        try:
            with httpx.Client(base_url=base, timeout=120) as http:
                rng = np.random.default_rng(11)
                _setup_models(http, rng, time.time())
                with MonitorClient(base, batch_size=500, flush_interval=0.5) as client:
                    sim = Simulator(client)
                    print("  backfilling two hours of traffic (drift in the last 30 minutes)…")
                    now = time.time()
                    _backfill(sim, now)
                    _history(services, now)
                    _show(http, base)
                    _live(sim, minutes)
            if keep_running:
                print(f"  still serving on {base} (Ctrl-C to stop)…", flush=True)
                while True:
                    time.sleep(3600)
        except (KeyboardInterrupt, Terminated):
            print("\n  stopping")
        finally:
            scheduler.shutdown(wait=True)
            server.should_exit = True  # uvicorn finishes the requests in flight, then returns
            thread.join(timeout=30)
            services.engine.dispose()


def _live(sim: Simulator, minutes: float) -> None:
    """``minutes`` of live traffic (drifted), 20 predictions a second per model."""
    if minutes > 0:
        print(f"  live traffic for {minutes:g} minutes (Ctrl-C to stop)…", flush=True)
    end = time.monotonic() + minutes * 60
    while time.monotonic() < end:
        now = time.time()
        for _ in range(20):
            sim.one(now, drifted=True)
        sim.release_labels(now)
        time.sleep(1.0)
    sim.client.flush(60)
    print(f"  done: {sim.client.stats.sent} predictions sent, {sim.client.stats.dropped} dropped")
