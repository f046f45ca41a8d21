"""API tokens, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Engine, text

from monitor.storage.engine import translate_errors


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, name: str) -> str:
    token = "mm_" + secrets.token_urlsafe(32)
    with translate_errors(), engine.begin() as conn:
        conn.execute(
            text("INSERT INTO api_tokens (name, token_sha256) VALUES (:n, :h)"),
            {"n": name, "h": token_hash(token)},
        )
    return token


def revoke_token(engine: Engine, name: str) -> bool:
    with translate_errors(), engine.begin() as conn:
        result = conn.execute(
            text("UPDATE api_tokens SET revoked_at = now() WHERE name = :n AND revoked_at IS NULL"),
            {"n": name},
        )
    return bool(result.rowcount)


def active_hashes(engine: Engine) -> set[str]:
    with translate_errors(), engine.connect() as conn:
        return set(
            conn.execute(
                text("SELECT token_sha256 FROM api_tokens WHERE revoked_at IS NULL")
            ).scalars()
        )
