"""`monitor grafana provision` against a local double of Grafana's HTTP API, the Grafana-managed
rule group against the 11.6 alerting schema and a real Prometheus, and the docker-compose stack
(file provisioning, services, secrets) through `docker-compose config`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.alerts.grafana_managed import GROUP, rule_group
from monitor.dashboards import all_dashboards
from monitor.dashboards.panels import PROMETHEUS_UID
from monitor.dashboards.render import GRAFANA_DASHBOARDS_PATH
from monitor.errors import MonitorError
from monitor.grafana import GrafanaAuthError, GrafanaError, GrafanaUnavailable, provision
from tests.support import grafana_schema, promstack

REPO = Path(__file__).resolve().parents[1]
TOKEN = "glsa_test_token"
PROMETHEUS_URL = "http://prometheus:9090"


# --- a Grafana double ----------------------------------------------------------------------------


@dataclass
class FakeGrafana:
    """Just enough of Grafana 11's HTTP API, answering as Grafana does (404 on unknown uids,
    409 on duplicate names, 412 on a dashboard without overwrite)."""

    token: str | None = TOKEN
    fail_with: int | None = None
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    rule_groups: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def handle(self, method: str, path: str, body: Any, auth: str | None) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        if self.token and auth != f"Bearer {self.token}":
            return 401, {"message": "invalid API key"}
        if self.fail_with:
            return self.fail_with, {"message": "boom"}
        for pattern, route in self._routes():
            match = re.fullmatch(pattern, f"{method} {path}")
            if match:
                answer: tuple[int, Any] = route(body, *match.groups())
                return answer
        return 404, {"message": "Not found"}

    def _routes(self) -> list[tuple[str, Any]]:
        return [
            (r"GET /api/datasources/uid/([^/]+)", self._get_datasource),
            (r"POST /api/datasources", self._create_datasource),
            (r"PUT /api/datasources/uid/([^/]+)", self._update_datasource),
            (r"GET /api/folders/([^/]+)", self._get_folder),
            (r"POST /api/folders", self._create_folder),
            (r"PUT /api/folders/([^/]+)", self._update_folder),
            (r"POST /api/dashboards/db", self._save_dashboard),
            (r"PUT /api/v1/provisioning/folder/([^/]+)/rule-groups/([^/]+)", self._put_group),
        ]

    def _get_datasource(self, _: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        return 200, self.datasources[uid]

    def _create_datasource(self, body: dict[str, Any]) -> tuple[int, Any]:
        if any(d["name"] == body["name"] for d in self.datasources.values()):
            return 409, {"message": "data source with the same name already exists"}
        stored = {**body, "id": len(self.datasources) + 1, "version": 1}
        self.datasources[body["uid"]] = stored
        return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource added"}

    def _update_datasource(self, body: dict[str, Any], uid: str) -> tuple[int, Any]:
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        old = self.datasources[uid]
        self.datasources[uid] = {**body, "id": old["id"], "version": old["version"] + 1}
        return 200, {"datasource": self.datasources[uid], "message": "Datasource updated"}

    def _get_folder(self, _: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        return 200, self.folders[uid]

    def _create_folder(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body["uid"] in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "version": 1}
        return 200, self.folders[body["uid"]]

    def _update_folder(self, body: dict[str, Any], uid: str) -> tuple[int, Any]:
        folder = self.folders[uid]
        folder.update(title=body["title"], version=folder["version"] + 1)
        return 200, folder

    def _save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
        dashboard, uid = body["dashboard"], body["dashboard"]["uid"]
        if body.get("folderUid") not in self.folders:
            return 400, {"message": "folder not found"}
        if "id" in dashboard:
            return 400, {"message": "dashboard id must not be set when saving by uid"}
        if uid in self.dashboards and not body.get("overwrite"):
            return 412, {"status": "version-mismatch", "message": "dashboard changed"}
        version = self.dashboards.get(uid, {}).get("version", 0) + 1
        self.dashboards[uid] = {"body": body, "version": version}
        return 200, {"status": "success", "uid": uid, "version": version, "url": f"/d/{uid}"}

    def _put_group(self, body: dict[str, Any], folder: str, group: str) -> tuple[int, Any]:
        if folder not in self.folders:
            return 404, {"message": "folder does not exist"}
        self.rule_groups[(folder, group)] = body
        return 200, body


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, answer = fake.handle(
                self.command, self.path.split("?")[0], body, self.headers.get("Authorization")
            )
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def calls(fake: FakeGrafana) -> list[str]:
    return [f"{method} {path}" for method, path, _ in fake.requests]


def test_first_run_creates_datasource_folder_dashboards_and_rules(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    summary = provision(url, TOKEN, PROMETHEUS_URL, "ml-monitor")
    dashboards = len(all_dashboards())
    assert calls(fake) == [
        f"GET /api/datasources/uid/{PROMETHEUS_UID}",
        "POST /api/datasources",
        "GET /api/folders/ml-monitor",
        "POST /api/folders",
        *["POST /api/dashboards/db"] * dashboards,
        f"PUT /api/v1/provisioning/folder/ml-monitor/rule-groups/{GROUP}",
    ]
    datasource = fake.datasources[PROMETHEUS_UID]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == PROMETHEUS_URL
    assert datasource["access"] == "proxy"
    assert fake.folders == {
        "ml-monitor": {"uid": "ml-monitor", "title": "ml-monitor", "version": 1}
    }
    for saved in fake.dashboards.values():
        assert saved["body"]["overwrite"] is True
        assert saved["body"]["folderUid"] == "ml-monitor"
    assert set(fake.dashboards) == {d["uid"] for d in all_dashboards().values()}
    assert f"{dashboards} dashboards saved" in summary
    assert "datasource ml-monitor-prometheus created" in summary
    assert "folder ml-monitor created" in summary


def test_second_run_updates_in_place_without_duplicates(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    provision(url, TOKEN, PROMETHEUS_URL, "ml-monitor")
    first = {uid: d["body"] for uid, d in fake.dashboards.items()}
    rules = dict(fake.rule_groups)
    fake.requests.clear()

    summary = provision(url, TOKEN, "http://prom.internal:9090", "ml-monitor")
    assert f"PUT /api/datasources/uid/{PROMETHEUS_UID}" in calls(fake)
    assert "POST /api/datasources" not in calls(fake)
    assert "POST /api/folders" not in calls(fake)
    assert list(fake.datasources) == [PROMETHEUS_UID]
    assert fake.datasources[PROMETHEUS_UID]["url"] == "http://prom.internal:9090"
    assert list(fake.folders) == ["ml-monitor"]
    assert {uid: d["body"] for uid, d in fake.dashboards.items()} == first
    assert all(d["version"] == 2 for d in fake.dashboards.values())
    assert fake.rule_groups == rules
    assert "updated" in summary
    assert "kept" in summary


def test_renamed_folder_title_is_updated(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    fake.folders["ml-monitor"] = {"uid": "ml-monitor", "title": "ML Monitor (old)", "version": 3}
    provision(url, TOKEN, PROMETHEUS_URL, "ml-monitor")
    assert "PUT /api/folders/ml-monitor" in calls(fake)
    assert fake.folders["ml-monitor"]["title"] == "ml-monitor"


def test_rule_group_validates_against_the_grafana_alerting_schema(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    provision(url, TOKEN, PROMETHEUS_URL, "ml-monitor")
    body = fake.rule_groups[("ml-monitor", GROUP)]
    validator = grafana_schema("alerting", "RuleGroup")
    assert [e.message for e in validator.iter_errors(body)] == []
    titles = {rule["title"] for rule in body["rules"]}
    assert titles == {
        "MLFeatureDrift",
        "MLDatasetDrift",
        "MLLatencyBudgetBurnFast",
        "MLLatencyBudgetBurnSlow",
    }
    for rule in body["rules"]:
        assert rule["folderUID"] == "ml-monitor"
        assert rule["data"][0]["datasourceUid"] == PROMETHEUS_UID
        assert rule["labels"]["severity"] in {"page", "ticket", "warning"}
        assert "$value " not in json.dumps(rule["annotations"])
    drift = [r for r in body["rules"] if "Drift" in r["title"]]
    assert all(r["labels"]["action"] == "retrain" for r in drift)


def test_wrong_token_is_an_auth_error(grafana: tuple[FakeGrafana, str]) -> None:
    _, url = grafana
    with pytest.raises(GrafanaAuthError) as raised:
        provision(url, "wrong", PROMETHEUS_URL, "ml-monitor")
    assert isinstance(raised.value, MonitorError)


def test_server_errors_and_unreachable_grafana_are_unavailable(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    fake.fail_with = 503
    with pytest.raises(GrafanaUnavailable):
        provision(url, TOKEN, PROMETHEUS_URL, "ml-monitor")
    closed = f"http://127.0.0.1:{promstack.free_port()}"
    with pytest.raises(GrafanaUnavailable):
        provision(closed, TOKEN, PROMETHEUS_URL, "ml-monitor")


def test_client_errors_and_bad_input_are_grafana_errors(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    fake.datasources["other"] = {"uid": "other", "name": "Prometheus (ml-monitor)", "id": 7}
    with pytest.raises(GrafanaError, match="same name"):
        provision(url, TOKEN, PROMETHEUS_URL, "ml-monitor")
    with pytest.raises(GrafanaError):
        provision("grafana:3000", TOKEN, PROMETHEUS_URL, "ml-monitor")
    with pytest.raises(GrafanaError):
        provision(url, TOKEN, PROMETHEUS_URL, "///")


@pytest.mark.e2e
def test_grafana_rule_queries_evaluate_on_prometheus(tmp_path: Path) -> None:
    """Grafana rules carry no recording rules, so their self-contained PromQL must run as is."""
    body = rule_group("ml-monitor", PROMETHEUS_UID)
    with promstack.start_synthetic_prometheus(tmp_path) as prometheus:
        for rule in body["rules"]:
            result = prometheus.query(
                rule["data"][0]["model"]["expr"], promstack.SYNTHETIC_QUERY_TIME
            )
            if rule["title"] == "MLDatasetDrift":
                assert result, "the drifted synthetic version must match"


# --- file provisioning and docker-compose ------------------------------------------------------


def test_file_provisioning_matches_the_dashboards_and_compose() -> None:
    provisioning = REPO / "dashboards" / "provisioning"
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (prometheus,) = datasource["datasources"]
    assert prometheus["uid"] == PROMETHEUS_UID
    assert prometheus["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "ml-monitor.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == GRAFANA_DASHBOARDS_PATH
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert f"./dashboards:{GRAFANA_DASHBOARDS_PATH}:ro" in volumes
    for kind in ("datasources", "dashboards"):
        mount = f"./dashboards/provisioning/{kind}:/etc/grafana/provisioning/{kind}:ro"
        assert mount in volumes


COMPOSE_ENV = {
    "MONITOR_API_TOKEN": "test-token-123",
    "POSTGRES_PASSWORD": "test-password",
    "GRAFANA_ADMIN_PASSWORD": "test-admin",
}


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("!!! docker-compose NOT INSTALLED: cannot check docker-compose.yml")
    environment = {k: v for k, v in os.environ.items() if k not in COMPOSE_ENV}
    environment.update(env or {})
    command = [exe, "-f", str(REPO / "docker-compose.yml"), *args]
    return subprocess.run(
        command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=60
    )


def test_docker_compose_config_is_valid_with_the_secrets_set() -> None:
    result = compose("config", "-q", env=COMPOSE_ENV)
    assert result.returncode == 0, result.stderr
    result = compose("--profile", "gpu", "config", env=COMPOSE_ENV)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"postgres", "ml-monitor", "prometheus", "alertmanager", "grafana"} <= set(services)
    assert services["dcgm-exporter"]["profiles"] == ["gpu"]
    assert services["grafana"]["image"].startswith("grafana/grafana:11.6")
    monitor = services["ml-monitor"]
    assert monitor["environment"]["MONITOR_API_TOKENS"] == "test-token-123"
    assert "test-password@postgres" in monitor["environment"]["MONITOR_DATABASE_URL"]
    assert monitor["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]


@pytest.mark.parametrize("missing", sorted(COMPOSE_ENV))
def test_docker_compose_refuses_to_start_without_a_secret(missing: str) -> None:
    env = {k: v for k, v in COMPOSE_ENV.items() if k != missing}
    result = compose("config", "-q", env=env)
    assert result.returncode != 0
    assert missing in result.stderr
