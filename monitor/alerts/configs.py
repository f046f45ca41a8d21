"""Alertmanager configuration and the Prometheus configuration docker-compose runs."""

from __future__ import annotations

from typing import Any

DEFAULT_WEBHOOK_URL = "http://ml-monitor:8000/v1/alertmanager"
SECRETS_DIR = "/etc/alertmanager/secrets"
DEFAULT_TOKEN_FILE = f"{SECRETS_DIR}/monitor-api-token"
DEFAULT_PAGER_KEY_FILE = f"{SECRETS_DIR}/pagerduty-routing-key"
RETRAIN_RECEIVER = "ml-monitor-retrain"
PAGER_RECEIVER = "pager"
DEFAULT_RECEIVER = "default"


def alertmanager_config(
    webhook_url: str = DEFAULT_WEBHOOK_URL,
    *,
    token_file: str | None = DEFAULT_TOKEN_FILE,
    pager_key_file: str = DEFAULT_PAGER_KEY_FILE,
) -> dict[str, Any]:
    """Pages to the pager, ``action=retrain`` (also) to ml-monitor's receiver, the rest to
    ``default``, which has no integration until you add one (mail, Slack, a ticket system)."""
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
                    # continue: the retrain alert is also routed by severity below.
                    "matchers": ['action="retrain"'],
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


def prometheus_config(rules_glob: str = "/etc/prometheus/rules/*.rules.yml") -> dict[str, Any]:
    """What docker-compose's Prometheus runs: scrape ml-monitor (and dcgm-exporter), load the
    rules, send alerts to Alertmanager."""
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "30s"},
        "rule_files": [rules_glob],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]},
        "scrape_configs": [
            {"job_name": "ml-monitor", "static_configs": [{"targets": ["ml-monitor:8000"]}]},
            {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
            {
                # Started by `docker-compose --profile gpu up`; down (and harmless) otherwise.
                "job_name": "dcgm-exporter",
                "static_configs": [{"targets": ["dcgm-exporter:9400"]}],
            },
        ],
    }
