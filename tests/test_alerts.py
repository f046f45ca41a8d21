"""The Prometheus rules and Alertmanager config: committed as rendered, accepted and unit-tested by
promtool, every expression evaluated on a real Prometheus, the routing checked by amtool and a
real Alertmanager."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.alerts import render_all
from monitor.alerts.cases import CASES_BY_FILE
from monitor.alerts.configs import DCGM_JOB, VLLM_JOB
from monitor.alerts.rules import Record, RuleSettings, groups
from monitor.schemas import DriftSettings
from tests.support import promstack
from tests.support.records import inline_records

REPO = Path(__file__).resolve().parents[1]
ALERTS = [alert for group in groups() for alert in group.alerts]
RECORDS = [rule for group in groups() for rule in group.rules if isinstance(rule, Record)]
DRIFT_ALERTS = {
    "MLFeatureDrift",
    "MLDatasetDrift",
    "MLMultivariateDrift",
    "MLSegmentDrift",
    "MLPerformanceDrop",
    "MLEstimatedPerformanceDrop",
}
ROLLBACK_ALERTS = {
    "MLVariantLatencyWorse",
    "MLVariantErrorsWorse",
    "MLVariantPredictionDrift",
    "MLDeploySkew",
}
LOOPBACK_WEBHOOK = "http://127.0.0.1:9/v1/alertmanager"
QUERY_TIME = promstack.SYNTHETIC_QUERY_TIME


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of alerts/ rendered for loopback, as tests must not point at compose hosts."""
    out = tmp_path_factory.mktemp("alerts")
    render_all(out, webhook_url=LOOPBACK_WEBHOOK, webhook_token_file=None)
    return out


def rule_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.rules.yml"))


def test_committed_alerts_are_a_fresh_render(tmp_path: Path) -> None:
    for path in render_all(tmp_path):
        committed = REPO / "alerts" / path.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run `monitor alerts render`"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} differs from a fresh render: run `monitor alerts render`"
        )


def test_every_alert_is_labelled_and_annotated() -> None:
    names = [alert.name for alert in ALERTS]
    assert len(set(names)) == len(names)
    docs = (REPO / "docs" / "alerts.md").read_text()
    for alert in ALERTS:
        assert alert.severity in {"page", "ticket", "warning"}, alert.name
        assert alert.summary, alert.name
        assert alert.description, alert.name
        assert f"### {alert.name}" in docs, f"{alert.name} has no runbook section in docs"
        assert (alert.action == "retrain") == (alert.name in DRIFT_ALERTS), alert.name
        assert (alert.action == "rollback") == (alert.name in ROLLBACK_ALERTS), alert.name


def test_docs_table_matches_the_rules() -> None:
    rows = {}
    for line in (REPO / "docs" / "alerts.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 6:
            rows[cells[0]] = cells
    for alert in ALERTS:
        _, _, for_, severity, action, _ = rows[alert.name]
        assert (for_, severity, action) == (alert.for_, alert.severity, alert.action or "")


def test_rendered_rules_carry_severity_runbook_and_retrain_labels(rendered: Path) -> None:
    for path in rule_files(rendered):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
                anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
                assert anchor == rule["alert"].lower()
                assert rule["labels"]["severity"] in {"page", "ticket", "warning"}


def test_every_alert_has_a_firing_and_a_quiet_promtool_case() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for cases in CASES_BY_FILE.values():
        for case in cases:
            for _, expected in case.checks:
                (fires if expected else quiet).add(case.alert)
    names = {alert.name for alert in ALERTS}
    assert names == fires, f"no firing case: {names - fires}"
    assert names == quiet, f"no quiet case: {names - quiet}"


def test_thresholds_follow_the_drift_settings_the_jobs_use(tmp_path: Path) -> None:
    settings = RuleSettings(drift=DriftSettings(min_samples=250, dataset_drift_share=0.3))
    render_all(tmp_path, settings=settings)
    text = (tmp_path / "model.rules.yml").read_text()
    assert "ml_dataset_drift_share >= 0.3" in text
    assert text.count('ml_window_samples{metric="drift"} >= 250') == 2
    default = (REPO / "alerts" / "model.rules.yml").read_text()
    assert f">= {DriftSettings().min_samples}" in default


def test_burn_rate_alerts_use_the_sre_workbook_windows() -> None:
    text = (REPO / "alerts" / "slo.rules.yml").read_text()
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        assert f"model:ml_prediction_errors:ratio_rate{window}" in text
        assert f"model:ml_prediction_slow:ratio_rate{window}" in text
        assert f"rate(ml_predictions_over_latency_slo_total[{window}])" in text
    # 14.4x / 6x / 3x / 1x each model's own budget, not the default targets' (issue 10)
    for factor in ("14.4", "6", "3", "1"):
        assert text.count(f"> on (model, slo) ({factor} * model:ml_slo_error_budget:ratio)") == 4
    assert "0.0144" not in text


def test_budget_records_are_sloths_per_model_and_run_every_5m() -> None:
    (group,) = yaml.safe_load((REPO / "alerts" / "slo-budget.rules.yml").read_text())["groups"]
    assert group["interval"] == "5m"
    records = [r["record"] for r in group["rules"]]
    assert records == [
        "model:ml_prediction_errors:ratio_rate30d",
        "model:ml_prediction_slow:ratio_rate30d",
        "model:ml_slo_period_burn_rate:ratio",
        "model:ml_slo_period_burn_rate:ratio",
        "model:ml_slo_period_error_budget_remaining:ratio",
    ]
    for rule in group["rules"]:
        assert "model_version" not in rule["expr"], rule  # one series per model and slo
    burn = [r["expr"] for r in group["rules"] if r["record"].endswith("period_burn_rate:ratio")]
    assert all("on (model, slo) model:ml_slo_error_budget:ratio" in e for e in burn)


@pytest.mark.e2e
def test_promtool_accepts_the_rules_and_their_unit_tests_pass(rendered: Path) -> None:
    files = [str(p) for p in rule_files(rendered)]
    promstack.run_tool("promtool", "check", "rules", *files)
    tests = sorted(str(p) for p in (rendered / "tests").glob("*.test.yml"))
    assert len(tests) == len(files)
    # the 30-day budget cases take a while on a loaded machine
    output = promstack.run_tool("promtool", "test", "rules", *tests, timeout=300)
    assert output.count("SUCCESS") == len(tests), output


@pytest.mark.e2e
def test_promtool_accepts_the_compose_prometheus_config(rendered: Path) -> None:
    promstack.run_tool("promtool", "check", "config", str(rendered / "prometheus.yml"))
    promstack.run_tool("promtool", "check", "config", str(REPO / "alerts" / "prometheus.yml"))


def test_compose_prometheus_scrapes_ml_monitor_dcgm_exporter_and_vllm() -> None:
    """Each job's target is a docker-compose service listening on that port: dcgm-exporter on
    :9400, vLLM's /metrics on its API port."""
    config = yaml.safe_load((REPO / "alerts" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {
        name: [t for sc in job["static_configs"] for t in sc["targets"]]
        for name, job in jobs.items()
    }
    assert targets["ml-monitor"] == ["ml-monitor:8000"]
    assert targets[DCGM_JOB] == ["dcgm-exporter:9400"]
    assert targets[VLLM_JOB] == ["vllm:8000"]
    assert jobs[VLLM_JOB]["metrics_path"] == "/metrics"
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert (
        "./alerts/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in (services["prometheus"]["volumes"])
    )
    assert any(p.endswith(":9400") for p in services["dcgm-exporter"]["ports"])
    vllm = services["vllm"]
    assert vllm["command"][vllm["command"].index("--port") + 1] == "8000"
    assert vllm["profiles"] == services["dcgm-exporter"]["profiles"] == ["gpu"]


def test_scrape_targets_are_configurable(tmp_path: Path) -> None:
    render_all(tmp_path, vllm_targets=["10.0.0.5:8000", "10.0.0.6:8000"])
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    (vllm,) = [job for job in config["scrape_configs"] if job["job_name"] == VLLM_JOB]
    assert vllm["static_configs"] == [{"targets": ["10.0.0.5:8000", "10.0.0.6:8000"]}]


# --- every expression on a real Prometheus ----------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, rendered: Path
) -> Iterator[promstack.Handle]:
    tmp = tmp_path_factory.mktemp("prometheus")
    with promstack.start_synthetic_prometheus(tmp, rule_files(rendered)) as handle:
        yield handle


def instant(prometheus: promstack.Handle, expr: str) -> list[Any]:
    return prometheus.query(expr, QUERY_TIME)


@pytest.mark.e2e
def test_prometheus_loads_every_rule_group(prometheus: promstack.Handle) -> None:
    loaded = prometheus.get("/api/v1/rules").json()["data"]["groups"]
    assert {g["name"] for g in loaded} == {g.name for g in groups()}
    unhealthy = [r["name"] for g in loaded for r in g["rules"] if r["health"] == "err"]
    assert unhealthy == []


@pytest.mark.e2e
def test_every_alert_expression_evaluates(prometheus: promstack.Handle) -> None:
    for alert in ALERTS:
        instant(prometheus, _inline_records(alert.expr))


@pytest.mark.e2e
def test_every_recording_rule_on_ml_metrics_returns_data(prometheus: promstack.Handle) -> None:
    empty = [
        rule.record
        for rule in RECORDS
        if re.search(r"\b(ml|monitor)_\w+", rule.expr)
        and not instant(prometheus, _inline_records(rule.expr))
    ]
    assert empty == []


def _inline_records(expr: str) -> str:
    """Recording-rule names replaced by their expressions: the backfilled TSDB has raw series
    only, and this evaluates what the rule would compute over them."""
    return inline_records(expr, RECORDS)


@pytest.mark.e2e
def test_alerts_fire_on_the_synthetic_data_where_expected(prometheus: promstack.Handle) -> None:
    """The drifted fraud 3.2.0 (dataset drift share 0.5 on 5000 rows) and the XID 79 in the
    synthetic series must show up; healthy figures must not."""
    by_name = {alert.name: alert for alert in ALERTS}

    def firing(name: str) -> list[dict[str, str]]:
        return [s["metric"] for s in instant(prometheus, _inline_records(by_name[name].expr))]

    assert {m["model_version"] for m in firing("MLDatasetDrift")} == {"3.2.0"}
    assert {m["feature"] for m in firing("MLFeatureDrift")} == {"amount"}
    assert {m["host"] for m in firing("GPUXidError")} == {"node-a", "node-b"}
    # the full MIG instance only (38900 of 40192 MiB used or reserved), not its sibling
    memory = {(m["host"], m["gpu_instance"]) for m in firing("GPUMemoryNearExhaustion")}
    assert memory == {("node-c", "0 MIG 3g.40gb #1")}
    # 1.2% of predictions fail in the synthetic data: past the 99.9% model's 14.4x budget, not
    # past the 99% one's
    assert {m["model"] for m in firing("MLErrorBudgetBurnFast")} == {"fraud"}
    assert firing("MLModelLoadSlow") == []
    # fraud 3.2.0 first served (and was deployed) two hours ago, drifted from its reference
    skew = {(m["model"], m["model_version"], m["window"]) for m in firing("MLDeploySkew")}
    assert skew == {("fraud", "3.2.0", "1h")}
    # the llm canary is a little slower than production, as often wrong and predicts alike
    for name in ("MLVariantLatencyWorse", "MLVariantErrorsWorse", "MLVariantPredictionDrift"):
        assert firing(name) == [], name
    assert firing("MLRollbackNotLoaded") == []
    assert firing("MLMonitorDown") == []


# --- Alertmanager ------------------------------------------------------------------------------


@pytest.mark.e2e
def test_amtool_accepts_the_alertmanager_config(rendered: Path) -> None:
    promstack.run_tool("amtool", "check-config", str(rendered / "alertmanager.yml"))
    promstack.run_tool("amtool", "check-config", str(REPO / "alerts" / "alertmanager.yml"))


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=page", "model=fraud"], "pager"),
        (["severity=ticket", "model=fraud"], "default"),
        (["severity=warning", "action=retrain", "model=fraud"], "ml-monitor-retrain,default"),
        (["severity=ticket", "action=retrain", "model=fraud"], "ml-monitor-retrain,default"),
        (["severity=ticket", "action=rollback", "model=fraud"], "ml-monitor-retrain,default"),
        (["severity=page", "action=rollback", "model=fraud"], "ml-monitor-retrain,pager"),
    ],
)
def test_routing(rendered: Path, labels: list[str], receivers: str) -> None:
    config = f"--config.file={rendered / 'alertmanager.yml'}"
    output = promstack.run_tool("amtool", "config", "routes", "test", config, *labels)
    assert output.strip().splitlines()[0] == receivers


def test_retrain_webhook_points_at_the_service_and_the_url_is_configurable(rendered: Path) -> None:
    def webhook(path: Path) -> dict[str, Any]:
        config = yaml.safe_load(path.read_text())
        (receiver,) = [r for r in config["receivers"] if r["name"] == "ml-monitor-retrain"]
        config_: dict[str, Any] = receiver["webhook_configs"][0]
        return config_

    assert webhook(REPO / "alerts" / "alertmanager.yml")["url"] == (
        "http://ml-monitor:8000/v1/alertmanager"
    )
    assert webhook(rendered / "alertmanager.yml") == {
        "url": LOOPBACK_WEBHOOK,
        "send_resolved": False,
        "max_alerts": 0,
    }


@pytest.mark.e2e
def test_alertmanager_inhibits_tickets_and_warnings_under_a_page_for_the_same_model(
    tmp_path: Path, rendered: Path
) -> None:
    alerts = [
        {"labels": {"alertname": "MLErrorBudgetBurnFast", "severity": "page", "model": "fraud"}},
        {
            "labels": {
                "alertname": "MLFeatureDrift",
                "severity": "warning",
                "model": "fraud",
                "action": "retrain",
            }
        },
        {
            "labels": {
                "alertname": "MLFeatureDrift",
                "severity": "warning",
                "model": "churn",
                "action": "retrain",
            }
        },
    ]
    with promstack.start_alertmanager(tmp_path, (rendered / "alertmanager.yml").read_text()) as am:
        assert am.post("/api/v2/alerts", json=alerts).status_code == 200
        deadline = time.monotonic() + 10
        state: dict[tuple[str, str], Any] = {}
        while time.monotonic() < deadline:
            got = am.get("/api/v2/alerts").json()
            state = {(a["labels"]["alertname"], a["labels"]["model"]): a for a in got}
            if len(state) == 3 and state[("MLFeatureDrift", "fraud")]["status"]["inhibitedBy"]:
                break
            time.sleep(0.2)
        suppressed = state[("MLFeatureDrift", "fraud")]["status"]
        assert suppressed["state"] == "suppressed", json.dumps(suppressed)
        assert state[("MLFeatureDrift", "churn")]["status"]["state"] == "active"
        receivers = {r["name"] for r in state[("MLFeatureDrift", "churn")]["receivers"]}
        assert receivers == {"ml-monitor-retrain", "default"}
        page = state[("MLErrorBudgetBurnFast", "fraud")]
        assert [r["name"] for r in page["receivers"]] == ["pager"]


@pytest.mark.e2e
def test_prometheus_sends_firing_alerts_to_alertmanager(tmp_path: Path, rendered: Path) -> None:
    """The promstack wiring the end-to-end test builds on: rule -> Prometheus -> Alertmanager."""
    rules = tmp_path / "always.rules.yml"
    rule = {"alert": "AlwaysFiring", "expr": "vector(1)", "labels": {"severity": "page"}}
    rules.write_text(yaml.safe_dump({"groups": [{"name": "always", "rules": [rule]}]}))
    config_text = (rendered / "alertmanager.yml").read_text()
    with promstack.start_alertmanager(tmp_path, config_text) as alertmanager:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager.address]}]}]
            },
        }
        with promstack.start_prometheus(tmp_path, config, [rules]):
            deadline = time.monotonic() + 20
            received: list[Any] = []
            while not received and time.monotonic() < deadline:
                received = alertmanager.get("/api/v2/alerts").json()
                time.sleep(0.2)
    assert [a["labels"]["alertname"] for a in received] == ["AlwaysFiring"]
    assert [r["name"] for r in received[0]["receivers"]] == ["pager"]
