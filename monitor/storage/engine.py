"""Engine factory and the translation of driver errors into ml-monitor's error tree."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy import exc as sa_exc

from monitor.errors import StorageError, StorageUnavailable

# SQLSTATE classes that mean "the server is not there or not accepting us right now".
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P")


def sqlalchemy_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and pin the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """The same URL as psycopg itself wants it."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, pool_size: int = 8, statement_timeout_ms: int = 60_000) -> Engine:
    return create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={
            "connect_timeout": 5,
            "options": f"-c statement_timeout={statement_timeout_ms}",
            "application_name": "ml-monitor",
        },
    )


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.OperationalError):
        sqlstate = getattr(exc, "sqlstate", None)
        return sqlstate is None or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return exc.orig is not None and _is_unavailable(exc.orig)
    return isinstance(exc, sa_exc.TimeoutError)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise driver errors as StorageUnavailable / StorageError."""
    try:
        yield
    except (psycopg.Error, sa_exc.SQLAlchemyError) as exc:
        if _is_unavailable(exc):
            raise StorageUnavailable(f"database unavailable: {exc}") from exc
        raise StorageError(f"database error: {exc}") from exc
