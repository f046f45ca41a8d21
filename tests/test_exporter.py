"""The results collector: what /metrics shows, that Prometheus tools accept it, and its cache."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Iterable

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from monitor import catalogue
from monitor.config import Settings
from monitor.exporter import ResultsCollector, render
from monitor.jobs.base import JOB_NAMES, Window
from monitor.jobs.runner import run_jobs
from monitor.services import Services, build_services
from monitor.storage.database import Database
from monitor.storage.engine import make_engine
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result, write_results
from tests.jobs.helpers import at, configure, predictions, window_end


def _families(body: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        f.name: [(s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(body)
    }


def _sample(
    families: dict[str, list[tuple[dict[str, str], float]]], name: str, labels: dict[str, str]
) -> float:
    (value,) = [v for lbl, v in families[name] if lbl == labels]
    return value


def _flaky(services: Services, model: ModelRecord, window: Window) -> list[Result]:
    raise RuntimeError("no luck")


@pytest.fixture
def computed(services: Services) -> None:
    configure(services, "fraud", cost={"gpu_hour_price": 1.0})
    end = window_end()
    predictions(
        services,
        "fraud",
        [
            {
                "timestamp": at(end, 1 + i),
                "latency_ms": 10.0 * i,
                "prediction": 0.1 * i,
                "model_version": "3.2.0",
                "status": "ok" if i else "error",
            }
            for i in range(10)
        ],
    )
    assert run_jobs(services, "fraud", "serving", now=end).failures == 0
    assert run_jobs(services, "fraud", "cost", now=end).failures == 0
    run_jobs(services, "fraud", "flaky", now=end, jobs={"flaky": _flaky})


def test_registering_runs_no_query() -> None:
    unreachable = make_engine("postgresql://nobody@127.0.0.1:9/none")
    registry = CollectorRegistry()
    registry.register(ResultsCollector(Database(unreachable)))  # would fail if describe() connected
    unreachable.dispose()


@pytest.mark.usefixtures("computed")
def test_metrics_show_latest_results_and_job_health(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    families = _families(response.text)
    base = {"model": "fraud", "model_version": "3.2.0", "window": "1h", "variant": "production"}
    latency = {
        s["quantile"]: v
        for s, v in families["ml_prediction_latency_seconds"]
        if s["window"] == "1h"
    }
    assert latency == pytest.approx({"0.5": 0.045, "0.95": 0.0855, "0.99": 0.0891})
    assert _sample(families, "ml_prediction_error_ratio", base) == pytest.approx(0.1)
    assert _sample(families, "ml_window_samples", {**base, "metric": "serving"}) == 10
    cost = {"model": "fraud", "model_version": "", "window": "1h", "currency": "USD"}
    assert _sample(families, "ml_cost_per_million_predictions", cost) == pytest.approx(1e5)
    failures = dict((s["job"], v) for s, v in families["monitor_job_failures"])
    assert failures == {**{name: 0.0 for name in JOB_NAMES}, "flaky": 1.0}
    assert {s["job"] for s, _ in families["monitor_job_last_success_timestamp_seconds"]} == {
        "serving",
        "cost",
    }
    assert {s["job"] for s, _ in families["monitor_job_duration_seconds"]} == {
        "serving",
        "cost",
        "flaky",
    }
    for samples in families.values():
        for labels, _ in samples:
            assert not any(k.endswith("id") for k in labels)


@pytest.mark.usefixtures("computed")
def test_scraped_families_say_what_the_catalogue_says(client: TestClient) -> None:
    scraped = {
        f.name: (f.type, f.documentation)
        for f in text_string_to_metric_families(client.get("/metrics").text)
        if f.name.startswith(("ml_", "monitor_")) and not f.name.endswith("_created")
    }
    expected = {m.family: (m.type, m.help) for m in catalogue.CATALOGUE}
    assert {"ml_prediction_latency_seconds", "monitor_job_failures"} <= set(scraped)
    assert {name: scraped[name] for name in scraped} == {name: expected[name] for name in scraped}


@pytest.mark.usefixtures("computed")
@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_exposition(client: TestClient) -> None:
    body = client.get("/metrics").text
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.usefixtures("computed")
def test_every_replica_reports_the_same_job_health(
    services: Services, settings: Settings, db_url: str
) -> None:
    other = build_services(settings, db_url, registry=CollectorRegistry())
    try:
        for registry in (services.registry, other.registry):
            assert registry.get_sample_value("monitor_job_failures_total", {"job": "flaky"}) == 1
    finally:
        other.engine.dispose()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _write(
    services: Services,
    value: float,
    metric: str = "custom_figure",
    labels: dict[str, str] | None = None,
) -> None:
    configure(services, "m")
    record = services.models.require("m")
    with services.engine.begin() as conn:
        write_results(
            conn, record.id, window_end(), [Result("1", "1h", metric, value, labels or {})]
        )


def _value(collected: Iterable[object], name: str) -> float | None:
    for family in collected:
        for sample in family.samples:  # type: ignore[attr-defined]
            if sample.name == name:
                return float(sample.value)
    return None


def test_scrapes_within_the_ttl_are_served_from_memory(services: Services) -> None:
    clock = FakeClock()
    collector = ResultsCollector(services.db, ttl_seconds=5, clock=clock)
    _write(services, 1.0)
    assert _value(collector.collect(), "ml_custom_figure") == 1.0
    _write(services, 2.0)
    clock.now = 4.9
    assert _value(collector.collect(), "ml_custom_figure") == 1.0
    clock.now = 5.0
    assert _value(collector.collect(), "ml_custom_figure") == 2.0


def test_unexportable_names_and_labels_are_left_out(services: Services) -> None:
    _write(services, 1.0, "things_total")
    _write(services, 3.0, "fine", {"bad-label": "x", "model": "spoofed", "feature": "amount"})
    collected = list(ResultsCollector(services.db).collect())
    assert _value(collected, "ml_things_total") is None
    (fine,) = [f for f in collected if f.name == "ml_fine"]
    assert fine.samples[0].labels == {
        "model": "m",
        "model_version": "1",
        "window": "1h",
        "feature": "amount",
    }


def test_a_database_outage_serves_the_last_read(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    _write(services, 7.0)
    collector = ResultsCollector(services.db, ttl_seconds=0)
    assert _value(collector.collect(), "ml_custom_figure") == 7.0
    collector.db = Database(make_engine("postgresql://nobody@127.0.0.1:9/none"))
    with caplog.at_level(logging.WARNING):
        assert _value(collector.collect(), "ml_custom_figure") == 7.0
    assert "cannot read results" in caplog.text
    collector.db.dispose()


def test_results_of_deleted_models_disappear(services: Services) -> None:
    _write(services, 1.0)
    with services.engine.begin() as conn:
        conn.execute(text("DELETE FROM models"))
    assert _value(ResultsCollector(services.db).collect(), "ml_custom_figure") is None


@pytest.mark.usefixtures("computed")
def test_the_cached_exposition_says_what_generate_latest_says(services: Services) -> None:
    _write(services, 0.5, "odd", {"feature": 'a "quoted" \\ back\nslash'})
    services.ingest_metrics.rejected("invalid_record")  # another collector's series
    collector = ResultsCollector(services.db)
    alone = CollectorRegistry()
    alone.register(collector)
    assert render(collector.snapshot().families).encode() == generate_latest(alone)

    def samples(body: bytes) -> set[tuple[str, str, frozenset[tuple[str, str]], float]]:
        return {
            (f.name, f.type, frozenset(s.labels.items()), s.value)
            for f in text_string_to_metric_families(body.decode())
            for s in f.samples
        }

    assert services.exposition is not None
    fast, slow = services.exposition(), generate_latest(services.registry)
    assert samples(fast) == samples(slow)
    assert len(fast.splitlines()) == len(slow.splitlines())


def test_stale_reads_are_served_while_a_background_read_runs(services: Services) -> None:
    clock = FakeClock()
    collector = ResultsCollector(services.db, ttl_seconds=5, clock=clock, serve_stale=True)
    _write(services, 1.0)
    assert _value(collector.collect(), "ml_custom_figure") == 1.0
    _write(services, 2.0)
    clock.now = 5.0
    assert _value(collector.collect(), "ml_custom_figure") == 1.0  # at once, the last read
    deadline = time.monotonic() + 10
    while collector._refreshing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _value(collector.collect(), "ml_custom_figure") == 2.0
    _write(services, 3.0)
    collector.invalidate()  # what the job runner does after writing results
    assert _value(collector.collect(), "ml_custom_figure") == 3.0
