"""The retraining webhook body (SPEC "Retraining webhook") and its canonical bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode
from uuid import UUID

from monitor.config import Settings

Reason = Literal["drift", "performance", "alert"]
REASONS: tuple[Reason, ...] = ("drift", "performance", "alert")
Action = Literal["retrain", "rollback"]
"""What the receiver is asked to do: retrain (every job event, ``action="retrain"`` alerts) or
roll the version back (``action="rollback"`` alerts: a canary worse than production, skew at
deploy)."""
ACTIONS: tuple[Action, ...] = ("retrain", "rollback")


def public_base_url(settings: Settings) -> str:
    """Where receivers can reach this service: MONITOR_PUBLIC_URL, else host and port."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def drift_link(base_url: str, model: str, window: str) -> str:
    query = f"?{urlencode({'window': window})}" if window else ""
    return f"{base_url}/v1/models/{quote(model, safe='')}/drift{query}"


def build_payload(
    *,
    event_id: UUID,
    model: str,
    model_version: str,
    reason: Reason,
    window: str,
    evidence: Mapping[str, Any],
    base_url: str,
    created_at: datetime,
    action: Action = "retrain",
) -> dict[str, Any]:
    return {
        "event_id": str(event_id),
        "model": model,
        "model_version": model_version,
        "action": action,
        "reason": reason,
        "window": window,
        "created_at": created_at.isoformat(),
        "evidence": dict(evidence),
        "drift_url": drift_link(base_url, model, window),
    }


def canonical_body(payload: Mapping[str, Any]) -> bytes:
    """The bytes that are signed and sent: sorted keys, no whitespace, UTF-8.

    The outbox keeps the payload as JSONB, which does not keep key order, so the body is
    re-serialised the same way on every attempt."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
