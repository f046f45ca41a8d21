"""Alertmanager configuration and the Prometheus configuration docker-compose runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DEFAULT_WEBHOOK_URL = "http://ml-monitor:8000/v1/alertmanager"
SECRETS_DIR = "/etc/alertmanager/secrets"
DEFAULT_TOKEN_FILE = f"{SECRETS_DIR}/monitor-api-token"
DEFAULT_PAGER_KEY_FILE = f"{SECRETS_DIR}/pagerduty-routing-key"
RETRAIN_RECEIVER = "ml-monitor-retrain"
PAGER_RECEIVER = "pager"
DEFAULT_RECEIVER = "default"
DCGM_JOB = "dcgm-exporter"
VLLM_JOB = "vllm"


def alertmanager_config(
    webhook_url: str = DEFAULT_WEBHOOK_URL,
    *,
    token_file: str | None = DEFAULT_TOKEN_FILE,
    pager_key_file: str = DEFAULT_PAGER_KEY_FILE,
) -> dict[str, Any]:
    """Pages to the pager, ``action=retrain`` and ``action=rollback`` (also) to ml-monitor's
    receiver, which turns them into the model's signed webhook; the rest to ``default``, which
    has no integration until you add one (mail, Slack, a ticket system)."""
    webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": False, "max_alerts": 0}
    if token_file:
        webhook["http_config"] = {
            "authorization": {"type": "Bearer", "credentials_file": token_file}
        }
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": DEFAULT_RECEIVER,
            "group_by": ["alertname", "model"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {
                    # continue: the retrain or rollback alert is also routed by severity below.
                    "matchers": ['action=~"retrain|rollback"'],
                    "receiver": RETRAIN_RECEIVER,
                    "continue": True,
                    "repeat_interval": "24h",
                },
                {
                    "matchers": ['severity="page"'],
                    "receiver": PAGER_RECEIVER,
                    "group_wait": "10s",
                    "repeat_interval": "1h",
                },
                # Catch-all, so a retrain alert also reaches people (a matched child with
                # `continue` would otherwise keep it from the root receiver).
                {"receiver": DEFAULT_RECEIVER},
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="page"'],
                "target_matchers": ['severity=~"ticket|warning"'],
                "equal": ["model"],
            }
        ],
        "receivers": [
            {"name": DEFAULT_RECEIVER},
            {
                "name": PAGER_RECEIVER,
                "pagerduty_configs": [{"routing_key_file": pager_key_file, "send_resolved": True}],
            },
            {"name": RETRAIN_RECEIVER, "webhook_configs": [webhook]},
        ],
    }


DEFAULT_VLLM_TARGETS = ("vllm:8000",)
"""vLLM's OpenAI server serves ``/metrics`` on its API port (docker-compose's ``vllm``)."""
DEFAULT_DCGM_TARGETS = ("dcgm-exporter:9400",)
"""dcgm-exporter's default listen address (docker-compose's ``dcgm-exporter``)."""


def prometheus_config(
    rules_glob: str = "/etc/prometheus/rules/*.rules.yml",
    *,
    vllm_targets: Sequence[str] = DEFAULT_VLLM_TARGETS,
    dcgm_targets: Sequence[str] = DEFAULT_DCGM_TARGETS,
) -> dict[str, Any]:
    """What docker-compose's Prometheus runs: scrape ml-monitor, dcgm-exporter and vLLM, load
    the rules, send alerts to Alertmanager.

    The dcgm-exporter and vLLM services start with ``docker-compose --profile gpu up``; without
    them their targets are down, which nothing alerts on. Point the targets at your own servers
    (``render_all(..., vllm_targets=[...])``) when they run elsewhere."""
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "30s"},
        "rule_files": [rules_glob],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]},
        "scrape_configs": [
            {"job_name": "ml-monitor", "static_configs": [{"targets": ["ml-monitor:8000"]}]},
            {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
            {
                "job_name": DCGM_JOB,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(dcgm_targets)}],
            },
            {
                # vLLM names the served model in model_name and labels nothing with a request
                # id: its series are bounded by models and engines.
                "job_name": VLLM_JOB,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(vllm_targets)}],
            },
        ],
    }
