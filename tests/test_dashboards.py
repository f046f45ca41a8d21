"""The Grafana dashboards: schema-valid for Grafana 11.6, committed as rendered, and every query
runs on a real Prometheus holding synthetic series of every metric they read."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from monitor.alerts.configs import DCGM_JOB, VLLM_JOB, prometheus_config
from monitor.dashboards import all_dashboards, render_all
from monitor.dashboards.panels import PROMETHEUS_UID
from tests.support import grafana_schema, promstack
from tests.support.records import inline_records

REPO = Path(__file__).resolve().parents[1]
DASHBOARDS = all_dashboards()
UIDS = {
    "overview": "ml-monitor-overview",
    "model": "ml-monitor-model",
    "serving": "ml-monitor-serving",
    "cost": "ml-monitor-cost",
    "gpu": "ml-monitor-gpu",
}
# What Grafana would put in for the template variables when the queries run.
VARIABLES = {
    "model": "fraud",
    "model_version": ".*",
    "window": "1h",
    "variant": ".*",
    "host": ".*",
    "vllm_model": ".*",
    "llm_model": ".*",
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
}
QUERY_TIME = promstack.SYNTHETIC_QUERY_TIME


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def visualizations(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (p for p in panels(dashboard) if p["type"] != "row")


def errors(validator: jsonschema.Draft7Validator, instance: object) -> list[str]:
    return [f"{e.json_path}: {e.message[:300]}" for e in validator.iter_errors(instance)]


def test_committed_dashboards_are_a_fresh_render(tmp_path: Path) -> None:
    written = render_all(tmp_path)
    for path in written:
        committed = REPO / "dashboards" / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run `monitor dashboards render`"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} differs from a fresh render: run `monitor dashboards render`"
        )


def test_a_second_render_is_byte_identical(tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in render_all(tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in render_all(tmp_path / "b")}
    assert first == second


def test_uids_are_stable_and_titles_unique() -> None:
    assert {name: d["uid"] for name, d in DASHBOARDS.items()} == UIDS
    assert len({d["title"] for d in DASHBOARDS.values()}) == len(DASHBOARDS)


@pytest.mark.parametrize("name", sorted(UIDS))
def test_dashboard_validates_against_the_grafana_11_6_schema(name: str) -> None:
    assert errors(grafana_schema("dashboard"), DASHBOARDS[name]) == []


@pytest.mark.parametrize("name", sorted(UIDS))
def test_panel_options_field_config_and_queries_validate(name: str) -> None:
    query = grafana_schema("prometheus")
    problems = []
    for panel in visualizations(DASHBOARDS[name]):
        kind, title = panel["type"], panel["title"]
        problems += [
            f"{title} options {e}"
            for e in errors(grafana_schema(kind, "Options"), panel["options"])
        ]
        if kind in ("timeseries", "table", "heatmap"):
            custom = panel["fieldConfig"]["defaults"].get("custom", {})
            problems += [
                f"{title} custom {e}" for e in errors(grafana_schema(kind, "FieldConfig"), custom)
            ]
        for target in panel["targets"]:
            problems += [f"{title} target {e}" for e in errors(query, target)]
    assert problems == []


@pytest.mark.parametrize("name", sorted(UIDS))
def test_every_panel_has_title_unit_description_and_a_unique_int_id(name: str) -> None:
    dashboard = DASHBOARDS[name]
    ids = [p["id"] for p in panels(dashboard)]
    assert all(isinstance(i, int) for i in ids)
    assert len(set(ids)) == len(ids)
    assert "id" not in dashboard
    assert '"id": null' not in json.dumps(dashboard)
    for panel in visualizations(dashboard):
        assert panel["title"], panel
        assert panel["description"], panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs, panel["title"]
        assert len(set(refs)) == len(refs), panel["title"]


def test_datasource_variable_defaults_to_the_provisioned_prometheus() -> None:
    for dashboard in DASHBOARDS.values():
        variable = dashboard["templating"]["list"][0]
        assert variable["type"] == "datasource"
        assert variable["query"] == "prometheus"
        assert variable["current"]["value"] == PROMETHEUS_UID


def test_model_dashboard_is_driven_by_model_version_and_window_variables() -> None:
    dashboard = DASHBOARDS["model"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"model", "model_version", "window"} <= set(variables)
    assert all(variables[n]["query"].startswith("label_values(") for n in ("model", "window"))
    assert variables["model_version"]["multi"]
    assert variables["model_version"]["allValue"] == ".*"
    titles = {p["title"] for p in visualizations(dashboard)}
    assert {"Per-feature drift", "Feature drift over time", "Labelled sample size"} <= titles
    names = {a["name"] for a in dashboard["annotations"]["list"] if not a.get("builtIn")}
    assert names == {"Model loads", "New version first seen"}


def test_serving_dashboard_repeats_a_panel_per_variant() -> None:
    repeated = [p for p in visualizations(DASHBOARDS["serving"]) if p.get("repeat")]
    assert [p["repeat"] for p in repeated] == ["variant"]


def test_gpu_dashboard_covers_dcgm_and_vllm_metrics() -> None:
    text = json.dumps(DASHBOARDS["gpu"])
    for metric in (
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_XID_ERRORS",
        "vllm:kv_cache_usage_perc",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:generation_tokens_total",
        "ml_time_to_first_token_seconds",
        "ml_tokens_total",
    ):
        assert metric in text, metric
    assert "Hostname" in text
    assert "hostname" in text


# --- against a real Prometheus ----------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(__\w+|[a-zA-Z_]\w*)")


def substitute(expr: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in VARIABLES:
            raise AssertionError(f"unknown template variable ${name} in {expr}")
        return VARIABLES[name]

    return _VARIABLE.sub(one, expr)


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(what, kind, PromQL or variable query) for every target, annotation and variable."""
    for panel in visualizations(dashboard):
        for target in panel["targets"]:
            kind = "instant" if target.get("instant") else "range"
            yield f"panel {panel['title']!r} {target['refId']}", kind, target["expr"]
    for annotation in dashboard["annotations"]["list"]:
        if annotation.get("builtIn"):
            continue
        yield f"annotation {annotation['name']!r}", "annotation", annotation["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield f"variable {variable['name']}", "variable", variable["query"]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[promstack.Handle]:
    with promstack.start_synthetic_prometheus(tmp_path_factory.mktemp("prometheus")) as handle:
        yield handle


def run(prometheus: promstack.Handle, kind: str, expr: str) -> list[Any]:
    """As Grafana runs it: instant or range targets, annotations over the whole range."""
    if kind == "variable":
        return variable_values(prometheus, expr)
    expr = inline_records(expr)
    if kind == "instant":
        return prometheus.query(expr, QUERY_TIME)
    since = promstack.SYNTHETIC_START if kind == "annotation" else QUERY_TIME - 2 * 3600
    return prometheus.query_range(expr, since, QUERY_TIME)


def variable_values(prometheus: promstack.Handle, query: str) -> list[Any]:
    label_values = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
    if label_values:
        match, label = label_values.groups()
        params = {"match[]": match, "start": promstack.SYNTHETIC_START, "end": QUERY_TIME}
        body = prometheus.get(f"/api/v1/label/{label}/values", params=params).json()
        assert body["status"] == "success", f"{query}\n{body}"
        values: list[Any] = body["data"]
        return values
    query_result = re.fullmatch(r"query_result\((.+)\)", query, re.DOTALL)
    assert query_result, f"unsupported variable query {query}"
    return run(prometheus, "instant", query_result.group(1))


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(UIDS))
def test_every_query_runs_on_prometheus_and_returns_data(
    name: str, prometheus: promstack.Handle
) -> None:
    empty = []
    for what, kind, expr in queries(DASHBOARDS[name]):
        if not run(prometheus, kind, substitute(expr)):
            empty.append(f"{what}: {expr}")
    assert empty == [], "queries without data on the synthetic series:\n" + "\n".join(empty)


@pytest.mark.e2e
def test_deployment_annotations_mark_the_reload_and_the_new_version(
    prometheus: promstack.Handle,
) -> None:
    annotations = {
        a["name"]: substitute(a["expr"])
        for a in DASHBOARDS["model"]["annotations"]["list"]
        if not a.get("builtIn")
    }

    def marked_at(expr: str, label: str) -> dict[str, set[int]]:
        series = run(prometheus, "annotation", expr)
        start = promstack.SYNTHETIC_START
        return {
            s["metric"][label]: {(int(t) - start) // 60 for t, _ in s["values"]} for s in series
        }

    reloads = marked_at(annotations["Model loads"].replace("fraud", "llm"), "variant")
    assert 90 in reloads["canary"]
    assert 90 not in reloads["production"]
    first_loads = marked_at(annotations["Model loads"], "model_version")
    assert 60 in first_loads["3.2.0"]
    new_versions = marked_at(annotations["New version first seen"], "model_version")
    assert 60 in new_versions["3.2.0"]
    assert 60 not in new_versions["3.1.0"]


@pytest.mark.e2e
def test_framebuffer_share_counts_reserved_memory_and_keeps_mig_instances_apart(
    prometheus: promstack.Handle,
) -> None:
    """dcgm-exporter's FB_USED/FB_RESERVED/FB_FREE of two MIG instances of one A100: one line per
    instance, each (used + reserved) / (used + free + reserved) of its own memory (a max by
    (host, gpu) would pair one instance's used with the other's free)."""
    (panel,) = [p for p in visualizations(DASHBOARDS["gpu"]) if p["title"] == "Framebuffer used"]
    (target,) = panel["targets"]
    result = prometheus.query(substitute(target["expr"]), QUERY_TIME)
    shares = {
        (s["metric"]["host"], s["metric"]["gpu_instance"]): float(s["value"][1]) for s in result
    }
    mig = {k[1]: v for k, v in shares.items() if k[0] == "node-c"}
    expected = {
        f"0 MIG 3g.40gb #{i}": (used + reserved) / (used + reserved + free)
        for i, (used, reserved, free) in promstack.MIG_INSTANCES.items()
    }
    assert mig == pytest.approx(expected)
    assert mig["0 MIG 3g.40gb #1"] == pytest.approx(38900 / 40192)
    # whole GPUs: one line each, named by their index alone
    assert {k for k in shares if k[0] == "node-a"} == {("node-a", "0"), ("node-a", "1")}
    legend = panel["targets"][0]["legendFormat"]
    assert "{{gpu_instance}}" in legend
    assert all(label in s["metric"] for s in result for label in ("host", "gpu_instance"))


# --- the compose scrape jobs feed the GPU dashboard ------------------------------------------

DCGM_LABELS = (
    'gpu="0",UUID="GPU-5fd0",pci_bus_id="00000000:3B:00.0",device="nvidia0",'
    'modelName="NVIDIA L4",Hostname="gpu-node-1",DCGM_FI_DRIVER_VERSION="550.54.15"'
)
VLLM_LABELS = 'engine="0",model_name="Qwen/Qwen2.5-1.5B-Instruct"'


def dcgm_exposition(scrape: int) -> str:
    """What dcgm-exporter's default counters look like on /metrics (one L4)."""
    gauges = {
        "DCGM_FI_DEV_GPU_UTIL": 63,
        "DCGM_FI_DEV_FB_USED": 17000,
        "DCGM_FI_DEV_FB_RESERVED": 434,
        "DCGM_FI_DEV_FB_FREE": 5600,
        "DCGM_FI_DEV_POWER_USAGE": 61.5,
        "DCGM_FI_DEV_GPU_TEMP": 58,
        "DCGM_FI_DEV_XID_ERRORS": 0,
    }
    lines = []
    for name, value in gauges.items():
        lines += [f"# TYPE {name} gauge", f"{name}{{{DCGM_LABELS}}} {value + scrape % 2}"]
    return "\n".join(lines) + "\n"


def vllm_exposition(scrape: int) -> str:
    """vLLM's v1 metrics loggers on /metrics (the series the GPU dashboard reads)."""
    ttft = "vllm:time_to_first_token_seconds"
    lines = [
        "# TYPE vllm:kv_cache_usage_perc gauge",
        f"vllm:kv_cache_usage_perc{{{VLLM_LABELS}}} 0.42",
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{{{VLLM_LABELS}}} 7",
        "# TYPE vllm:num_requests_waiting gauge",
        f"vllm:num_requests_waiting{{{VLLM_LABELS}}} 1",
        "# TYPE vllm:generation_tokens_total counter",
        f"vllm:generation_tokens_total{{{VLLM_LABELS}}} {500 * scrape}",
        f"# TYPE {ttft} histogram",
    ]
    cumulative = 0
    for le, per_scrape in (("0.05", 3), ("0.1", 4), ("0.5", 2), ("1.0", 1), ("+Inf", 0)):
        cumulative += per_scrape * scrape
        lines.append(f'{ttft}_bucket{{{VLLM_LABELS},le="{le}"}} {cumulative}')
    lines += [
        f"{ttft}_count{{{VLLM_LABELS}}} {cumulative}",
        f"{ttft}_sum{{{VLLM_LABELS}}} {0.12 * cumulative:g}",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def exporter() -> Iterator[Callable[[Callable[[int], str]], str]]:
    """Start a /metrics endpoint serving ``text(n)`` at its n-th scrape; returns its address."""
    servers: list[ThreadingHTTPServer] = []

    def start(text: Callable[[int], str]) -> str:
        scrapes = iter(range(1, 1_000_000))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = text(next(scrapes)).encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.e2e
def test_the_compose_scrape_jobs_give_the_gpu_and_vllm_panels_data(
    tmp_path: Path, exporter: Callable[[Callable[[int], str]], str]
) -> None:
    """The shipped Prometheus config's dcgm-exporter and vLLM jobs, pointed at exporters on
    loopback: every dcgm-exporter and vLLM query of the GPU dashboard returns data."""
    config = prometheus_config(
        dcgm_targets=[exporter(dcgm_exposition)], vllm_targets=[exporter(vllm_exposition)]
    )
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    del config["rule_files"], config["alerting"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {DCGM_JOB, VLLM_JOB} <= jobs
    with promstack.start_prometheus(tmp_path, config) as prometheus:
        deadline = time.monotonic() + 30
        ready = "count_over_time(vllm:generation_tokens_total[1m]) >= 4"
        while not prometheus.query(ready) and time.monotonic() < deadline:
            time.sleep(0.5)
        up = {s["metric"]["job"]: s["value"][1] for s in prometheus.query("up")}
        assert up[DCGM_JOB] == "1"
        assert up[VLLM_JOB] == "1"
        now = time.time()
        empty, checked = [], 0
        for what, kind, expr in queries(DASHBOARDS["gpu"]):
            if not re.search(r"DCGM_|vllm:", expr):
                continue  # ml-monitor's own LLM figures: not from these jobs
            checked += 1
            if kind == "variable":
                found = variable_values_now(prometheus, expr)
            elif kind == "instant":
                found = prometheus.query(substitute(expr), now)
            else:
                found = prometheus.query_range(substitute(expr), now - 60, now, step=5)
            if not found:
                empty.append(f"{what}: {expr}")
        share = prometheus.query(
            substitute(
                next(
                    t["expr"]
                    for p in visualizations(DASHBOARDS["gpu"])
                    if p["title"] == "Framebuffer used"
                    for t in p["targets"]
                )
            ),
            now,
        )
    assert checked >= 12
    assert empty == [], "GPU dashboard queries without data:\n" + "\n".join(empty)
    ((series_,),) = [share]
    assert series_["metric"]["gpu_instance"] == "0"
    # used + reserved over the whole framebuffer, whichever scrape (odd scrapes add 1 MiB each)
    assert float(series_["value"][1]) == pytest.approx((17000 + 434) / (17000 + 434 + 5600), 1e-3)


def variable_values_now(prometheus: promstack.Handle, query: str) -> list[Any]:
    label_values = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
    if label_values:
        match, label = label_values.groups()
        body = prometheus.get(f"/api/v1/label/{label}/values", params={"match[]": match}).json()
        values: list[Any] = body["data"]
        return values
    query_result = re.fullmatch(r"query_result\((.+)\)", query, re.DOTALL)
    assert query_result, f"unsupported variable query {query}"
    return prometheus.query(query_result.group(1))
