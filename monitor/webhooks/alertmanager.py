"""Alertmanager webhook payloads (version 4) turned into webhook events.

A firing alert labelled ``action="retrain"`` (or ``action="rollback"``) and ``model="<name>"``
enqueues one event with reason ``alert`` and that ``action`` in the signed body, to the model's
webhook. Its id is derived from the alert's fingerprint and start time, so the notifications
Alertmanager repeats for the same alert (``repeat_interval``, retries, several replicas of
Alertmanager) enqueue it once. A rollback is not held by the retraining cooldown. Resolved
alerts and other actions are ignored.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field

from monitor.errors import NotFound, Problem, ValidationFailed
from monitor.jobs.context import JobContext
from monitor.schemas import JsonInt, Timestamp
from monitor.storage.models import ModelRecord
from monitor.webhooks.outbox import enqueue_retrain
from monitor.webhooks.payload import ACTIONS, Action, public_base_url
from monitor.webhooks.triggers import EVENT_NAMESPACE

RETRAIN_ACTION = "retrain"
ACTED_ON: frozenset[str] = frozenset(ACTIONS)


class _Wire(BaseModel):
    # Alertmanager adds fields over time; unknown ones are ignored, not refused. Fields are
    # read by their wire names only: a ``generator_url`` key is one of those unknown ones.
    model_config = ConfigDict(extra="ignore", populate_by_name=False)


class Alert(_Wire):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: Timestamp = Field(alias="startsAt")
    ends_at: Timestamp | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""

    @property
    def wants_retraining(self) -> bool:
        """Firing and asking for an action the receiver takes (retrain or rollback)."""
        return self.status == "firing" and self.labels.get("action") in ACTED_ON

    @property
    def action(self) -> Action:
        return "rollback" if self.labels.get("action") == "rollback" else "retrain"

    def event_id(self) -> UUID:
        """Stable across repeats: the fingerprint (or, if absent, the label set) + startsAt."""
        identity = (
            self.fingerprint
            or hashlib.sha256(repr(sorted(self.labels.items())).encode()).hexdigest()
        )
        started = self.starts_at.astimezone(UTC).isoformat()
        return uuid5(EVENT_NAMESPACE, f"alertmanager|{identity}|{started}")

    def evidence(self) -> dict[str, Any]:
        return {
            "alert": {
                "name": self.labels.get("alertname", ""),
                "labels": self.labels,
                "annotations": self.annotations,
                "starts_at": self.starts_at.astimezone(UTC).isoformat(),
                "generator_url": self.generator_url,
                "fingerprint": self.fingerprint,
            }
        }


class AlertmanagerPayload(_Wire):
    """The body of Alertmanager's webhook_config notifications, version 4."""

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    alerts: list[Alert]
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: JsonInt = Field(default=0, ge=0, le=2**31 - 1, alias="truncatedAlerts")


def _models_for(ctx: JobContext, alerts: list[tuple[int, Alert]]) -> dict[str, ModelRecord]:
    """Every model the retrain alerts name; the whole notification is refused if one lacks
    its ``model`` label (422) or names a model this service does not know (404)."""
    missing = [
        Problem(f"a firing alert with action={a.action} needs a 'model' label", i, "labels.model")
        for i, a in alerts
        if not a.labels.get("model")
    ]
    if missing:
        raise ValidationFailed("retrain alerts must name their model", missing)
    found: dict[str, ModelRecord] = {}
    unknown: list[Problem] = []
    for i, a in alerts:
        name = a.labels["model"]
        record = found.get(name) or ctx.models.get(name)
        if record is None:
            unknown.append(Problem(f"model {name!r} is not known", i, "labels.model"))
        else:
            found[name] = record
    if unknown:
        raise NotFound("retrain alerts name unknown models", unknown)
    return found


def receive_alerts(
    ctx: JobContext, payload: AlertmanagerPayload, now: datetime | None = None
) -> dict[str, Any]:
    """Enqueue a retraining event per firing retrain alert, all in one transaction."""
    wanted = [(i, a) for i, a in enumerate(payload.alerts) if a.wants_retraining]
    records = _models_for(ctx, wanted)
    results: list[dict[str, Any]] = []
    with ctx.db.begin() as conn:
        for i, alert in wanted:
            done = enqueue_retrain(
                conn,
                records[alert.labels["model"]],
                reason="alert",
                window=alert.labels.get("window", ""),
                model_version=alert.labels.get("model_version", ""),
                evidence=alert.evidence(),
                base_url=public_base_url(ctx.settings),
                event_id=alert.event_id(),
                now=now or ctx.clock(),
                action=alert.action,
            )
            results.append(
                {
                    "index": i,
                    "model": alert.labels["model"],
                    "action": alert.action,
                    "event_id": str(done.event_id),
                    "outcome": done.outcome,
                }
            )
    return {
        "received": len(payload.alerts),
        "ignored": len(payload.alerts) - len(wanted),
        "enqueued": sum(r["outcome"] == "enqueued" for r in results),
        "results": results,
    }
