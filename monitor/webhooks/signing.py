"""Signatures of webhook bodies.

``X-Monitor-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with the model's shared
secret, where ``<timestamp>`` is the ``X-Monitor-Timestamp`` header (unix seconds). Signing the
timestamp with the body lets a receiver refuse replays of old deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Monitor-Signature`` header value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signed_headers(event_id: str, secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Monitor-Event-Id": event_id,
        "X-Monitor-Timestamp": str(timestamp),
        "X-Monitor-Signature": signature(secret, timestamp, body),
    }


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: constant-time compare, and refuse timestamps too far from now."""
    if not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_seconds:
        return False
    expected = signature(secret, int(timestamp), body)
    return hmac.compare_digest(expected.encode(), header.encode())
