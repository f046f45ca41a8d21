"""Bearer tokens for writes: from MONITOR_API_TOKENS and the api_tokens table (hashed)."""

from __future__ import annotations

import hmac
import threading
import time

from sqlalchemy import Engine

from monitor.errors import Unauthorized
from monitor.storage.tokens import active_hashes, token_hash


class TokenVerifier:
    def __init__(self, engine: Engine, configured: list[str], *, ttl_seconds: float = 30.0) -> None:
        self.engine = engine
        self.configured = {token_hash(t) for t in configured}
        self.ttl = ttl_seconds
        self._stored: set[str] = set()
        self._expires = 0.0
        self._mutex = threading.Lock()

    def _hashes(self) -> set[str]:
        with self._mutex:
            if time.monotonic() >= self._expires:
                self._stored = active_hashes(self.engine)
                self._expires = time.monotonic() + self.ttl
            return self.configured | self._stored

    def enabled(self) -> bool:
        return bool(self._hashes())

    def check(self, authorization: str | None) -> None:
        """Raise Unauthorized unless tokens are off or ``authorization`` carries a valid one."""
        hashes = self._hashes()
        if not hashes:
            return
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("this endpoint needs 'Authorization: Bearer <token>'")
        presented = token_hash(authorization[7:].strip())
        if not any(hmac.compare_digest(presented, h) for h in hashes):
            raise Unauthorized("the bearer token is not valid")
