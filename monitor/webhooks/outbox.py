"""Deciding to write a retraining event: the model's webhook settings and the signed payload.

The outbox itself (the table, cooldowns, claims, dead letters) is ``monitor.storage.outbox``:
an event is written in the caller's transaction, with its evidence, and delivered later by
``dispatcher.dispatch_pending``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError
from sqlalchemy import Connection

from monitor.errors import ConfigError
from monitor.schemas import WebhookSettings
from monitor.storage.models import ModelRecord
from monitor.storage.outbox import Enqueued, enqueue_event
from monitor.webhooks.payload import Action, Reason, build_payload

__all__ = ["Enqueued", "enqueue_retrain", "webhook_settings"]


def webhook_settings(config: Mapping[str, Any] | None) -> WebhookSettings | None:
    """The ``webhook`` section of a stored model configuration, if it has one."""
    raw = (config or {}).get("webhook")
    if not raw:
        return None
    try:
        return WebhookSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"stored webhook configuration is invalid: {exc}") from exc


def enqueue_retrain(
    conn: Connection,
    model: ModelRecord,
    *,
    reason: Reason,
    window: str,
    evidence: Mapping[str, Any],
    base_url: str,
    model_version: str = "",
    event_id: UUID | None = None,
    now: datetime | None = None,
    action: Action = "retrain",
) -> Enqueued:
    """Write a retraining event in the caller's transaction, unless it is a duplicate, the
    model is cooling down, or the model has no webhook. Commits with the caller, or not at all.

    A rollback (``action="rollback"``) is not held by the retraining cooldown and does not
    start one: a bad canary must go back now, whatever was retrained today. It is still sent
    once per alert firing (its ``event_id``)."""
    event_id = event_id or uuid4()
    webhook = model.options.webhook
    if webhook is None:
        return Enqueued(event_id, "no_webhook")
    now = now or datetime.now(UTC)
    payload = build_payload(
        event_id=event_id,
        model=model.name,
        model_version=model_version,
        reason=reason,
        window=window,
        evidence=evidence,
        base_url=base_url,
        created_at=now,
        action=action,
    )
    return enqueue_event(
        conn,
        event_id=event_id,
        model_id=model.id,
        model_version=model_version,
        reason=reason,
        window=window,
        payload=payload,
        cooldown_seconds=webhook.cooldown_seconds if action == "retrain" else None,
        now=now,
    )
