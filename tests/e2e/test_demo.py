"""``monitor demo`` as a new user runs it, twice, on the embedded PostgreSQL: its own fresh data
dir, every figure printed, prediction drift, the status page at / in headless Chromium (the
figures it shows are those of /metrics), /docs rendering without a CDN, and SIGTERM stopping it
with its PostgreSQL."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import reachable_tmp_dir
from tests.support.appserver import free_port
from tests.support.chromium import ARTIFACTS, dump_dom, require_chromium, screenshot
from tests.support.processes import monitor_env, postmaster_pid, process_gone, start_monitor

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
MONITOR = [sys.executable, "-m", "monitor"]


@dataclass
class Demo:
    data_dir: Path
    first_output: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str


def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"demo exited {proc.returncode}:\n{log.read_text()}")
        time.sleep(0.3)
    raise AssertionError(f"no {text!r} after {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data_dir = reachable_tmp_dir("mm-demo-")
    logs = tmp_path_factory.mktemp("demo")
    # a model made by hand in the user's own data dir: it must stay out of the demo
    hand = logs / "hand.jsonl"
    hand.write_text('{"x": 1.0}\n')
    env = monitor_env(data_dir, MONITOR_SCHEDULER_INTERVAL_SECONDS="3600")
    subprocess.run([*MONITOR, "ingest", str(hand), "--model", "handmade"], env=env, check=True)
    first = subprocess.run(
        [*MONITOR, "demo", "--minutes", "0", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    port = free_port()
    log = logs / "demo.log"
    proc = start_monitor(
        ["demo", "--minutes", "0", "--keep-running", "--port", str(port)], env, log
    )
    try:
        _wait_for(log, "still serving", proc)
        yield Demo(data_dir, first.stdout, proc, log, f"http://127.0.0.1:{port}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)


def _metrics(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_demo_prints_serving_cost_drift_and_estimates_and_where_they_live(
    demo: Demo,
) -> None:
    out = demo.first_output
    latency = r"\s+[\d.]+ ms" * 3
    assert re.search(rf"fraud\s+3\.2\.0\s+production{latency}\s+[\d.]+%\s+[\d.]+\s+-", out), out
    assert re.search(rf"fraud\s+3\.3\.0-rc1\s+canary{latency}\s+[\d.]+%\s+[\d.]+\s+41\.5 s", out)
    assert re.search(rf"eta\s+1\.4\.0\s+production{latency}", out)
    assert re.search(r"cost per 1M predictions, last 1h\n\s+eta\s+.*USD\n\s+fraud\s+.*USD", out)
    assert re.search(r"prediction drift, last 1h\n\s+eta\s+1\.4\.0\s+\w+\s+[\d.]+", out)
    # the fraud classifier's estimate without labels, with its band and the realized figure;
    # the drift of the last 30 minutes seen by the multivariate methods
    band = r"\s+(0\.\d{3})\s+(0\.\d{3})-(0\.\d{3})\s+0\.\d{3}"
    estimated = re.search(rf"fraud\s+3\.2\.0\s+accuracy{band}", out)
    assert estimated, out
    value, lower, upper = map(float, estimated.groups())
    assert lower <= value <= upper
    assert re.search(r"eta\s+1\.4\.0\s+mae\s+[\d.]+\s+[\d.]+-[\d.]+", out)
    assert re.search(r"DRIFT fraud\s+3\.2\.0\s+domain_classifier\s+0\.\d{3} \(threshold 0\.", out)
    assert re.search(r"fraud\s+3\.2\.0\s+pca_reconstruction\s+[\d.]+ \(threshold", out)
    for where in (
        "ml_estimated_performance{metric} / _lower / _upper",
        "ml_multivariate_drift_score{method} / _detected",
        "ml_prediction_latency_seconds{quantile}",
        "ml_prediction_error_ratio",
        "ml_model_load_seconds",
        "ml_cost_per_million_predictions{currency}",
        "ml_prediction_drift_score",
        "ML serving & versions",
        "ML cost",
        "/metrics",
        "/docs",
    ):
        assert where in out, where
    assert "handmade" not in out


def test_the_demo_has_its_own_data_dir_and_starts_fresh(demo: Demo) -> None:
    assert f"demo data: {demo.data_dir.resolve()}/demo (emptied at every start" in demo.first_output
    names = [m["name"] for m in httpx.get(f"{demo.url}/v1/models").json()["models"]]
    assert names == ["eta", "fraud"]  # not the model made by hand in MONITOR_DATA_DIR
    figures = _metrics(demo.url)
    served = {
        dict(labels)["model"]: value
        for (name, labels), value in figures.items()
        if name == "ml_window_samples"
        and dict(labels)["window"] == "24h"
        and dict(labels)["metric"] == "serving"
        and dict(labels)["variant"] == "production"
        and dict(labels)["model"] == "eta"
    }
    # one backfill of 3000 (less the last seconds after the window end's minute), not the first
    # run's 3000 stacked under it
    assert 2900 <= served["eta"] <= 3000


def test_the_demo_exports_prediction_drift(demo: Demo) -> None:
    figures = _metrics(demo.url)
    drifted = {
        (dict(labels)["model"], dict(labels)["model_version"])
        for name, labels in figures
        if name == "ml_prediction_drift_score" and dict(labels)["window"] == "1h"
    }
    assert {("fraud", "3.2.0"), ("eta", "1.4.0")} <= drifted
    body = httpx.get(f"{demo.url}/v1/models/fraud/drift", params={"window": "1h"}).json()
    assert body["notes"] == []
    assert all(v["prediction"] is not None for v in body["versions"])


class _Figures(HTMLParser):
    """(metric, labels, shown text) of every ``span.fig``, and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[tuple[str, dict[str, str], str]] = []
        self.links: list[str] = []
        self._open: tuple[str, dict[str, str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")
        if tag == "span" and a.get("class") == "fig":
            self._open = (a["data-metric"] or "", json.loads(a["data-labels"] or "{}"))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.figures.append((*self._open, data))
            self._open = None


def _shown_value(text: str) -> tuple[float, float]:
    """The number a cell shows, in the metric's unit, and half its last displayed digit."""
    match = re.match(r"(-?[\d,]+(?:\.(\d+))?)\s*(ms|%|s|/s)?", text.strip())
    assert match, text
    number = float(match.group(1).replace(",", ""))
    step = 0.5 * 10 ** -len(match.group(2) or "")
    scale = {"ms": 1e-3, "%": 1e-2}.get(match.group(3) or "", 1.0)
    return number * scale, step * scale


def test_the_status_page_in_chromium_shows_the_figures_of_metrics(demo: Demo) -> None:
    browser = require_chromium()
    dom = dump_dom(browser, f"{demo.url}/")
    shot = screenshot(browser, f"{demo.url}/", ARTIFACTS / "status-page.png")
    print(f"status page screenshot: {shot}")
    page = _Figures()
    page.feed(dom)
    figures = _metrics(demo.url)
    assert len(page.figures) >= 20, dom[:2000]
    for metric, labels, text in page.figures:
        exported = figures[(metric, frozenset(labels.items()))]
        shown, tolerance = _shown_value(text)
        assert abs(shown - exported) <= tolerance * 1.0001, (metric, labels, text, exported)
    shown_metrics = {m for m, _, _ in page.figures}
    assert {
        "ml_dataset_drift_share",
        "ml_prediction_drift_score",
        "ml_prediction_latency_seconds",
        "ml_prediction_error_ratio",
        "ml_model_load_seconds",
        "ml_cost_per_million_predictions",
    } <= shown_metrics
    assert dom.count("<svg") >= len(page.figures) - 2  # a sparkline for (almost) every figure
    for link in ("/metrics", "/docs", "/v1/models/fraud/drift?window=1h"):
        assert link in page.links, link
    assert "/v1/models/fraud/report?window=1h" in page.links
    assert "DRIFT" in dom
    assert "handmade" not in dom


def test_docs_render_in_chromium_without_a_cdn(demo: Demo) -> None:
    browser = require_chromium()
    dom = dump_dom(browser, f"{demo.url}/docs", wait_ms=10_000)
    assert "opblock" in dom, dom[:3000]  # Swagger UI ran and drew the operations
    assert "/v1/predictions" in dom


def test_sigterm_stops_the_demo_and_its_embedded_postgres(demo: Demo) -> None:
    postgres = postmaster_pid(demo.data_dir / "demo")
    demo.proc.send_signal(signal.SIGTERM)
    assert demo.proc.wait(timeout=60) == 0, demo.log.read_text()
    assert process_gone(postgres)
    assert not (demo.data_dir / "demo" / "pgdata" / "postmaster.pid").exists()
