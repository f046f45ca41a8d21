"""The drift and latency alerts as a Grafana-managed alert rule group (provisioning API body).

For teams that alert from Grafana rather than Prometheus: the same expressions, labels and
annotations as the Prometheus rules, self-contained (no recording rules needed). Query ``A`` is
the rule's PromQL, which returns series only while the alert condition holds; the condition
``B`` (``is_number($A)``) is true for each of them. No data means OK, as in Prometheus.
"""

from __future__ import annotations

import re
from typing import Any

from monitor.alerts.render import alert_annotations
from monitor.alerts.rules import (
    INLINE,
    Alert,
    RuleSettings,
    burn_alerts,
    drift_alerts,
)

GROUP = "ml-monitor"
EVALUATION_SECONDS = 60
_VALUE = re.compile(r"\$value\b")


def grafana_alerts(settings: RuleSettings) -> tuple[Alert, ...]:
    return (*drift_alerts(settings), *burn_alerts("slow", INLINE))


def rule_uid(alert: Alert) -> str:
    return f"ml-monitor-{alert.name.lower()}"[:40]


def _rule(
    alert: Alert, folder_uid: str, datasource_uid: str, settings: RuleSettings
) -> dict[str, Any]:
    annotations = {
        key: _VALUE.sub("$values.A.Value", text)
        for key, text in alert_annotations(alert, settings).items()
    }
    query = {
        "refId": "A",
        "expr": alert.expr,
        "instant": True,
        "range": False,
        "datasource": {"type": "prometheus", "uid": datasource_uid},
    }
    condition = {
        "refId": "B",
        "type": "math",
        "expression": "is_number($A)",
        "datasource": {"type": "__expr__", "uid": "__expr__"},
    }
    return {
        "uid": rule_uid(alert),
        "title": alert.name,
        "ruleGroup": GROUP,
        "folderUID": folder_uid,
        "orgID": 1,
        "condition": "B",
        "data": [
            {
                "refId": "A",
                "datasourceUid": datasource_uid,
                "relativeTimeRange": {"from": 600, "to": 0},
                "model": query,
            },
            {
                "refId": "B",
                "datasourceUid": "__expr__",
                "relativeTimeRange": {"from": 0, "to": 0},
                "model": condition,
            },
        ],
        "noDataState": "OK",
        "execErrState": "Error",
        "for": alert.for_,
        "labels": alert.labels,
        "annotations": annotations,
        "isPaused": False,
    }


def rule_group(
    folder_uid: str, datasource_uid: str, settings: RuleSettings | None = None
) -> dict[str, Any]:
    """Body of ``PUT /api/v1/provisioning/folder/{folder_uid}/rule-groups/ml-monitor``."""
    settings = settings or RuleSettings()
    rules = [_rule(a, folder_uid, datasource_uid, settings) for a in grafana_alerts(settings)]
    return {
        "title": GROUP,
        "folderUid": folder_uid,
        "interval": EVALUATION_SECONDS,
        "rules": rules,
    }
