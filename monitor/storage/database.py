"""The one door to PostgreSQL for code outside ``monitor.storage``.

Callers outside the storage package never see a driver exception: every connection and
transaction opened here re-raises them as ``StorageUnavailable`` / ``StorageError``
(``engine.translate_errors``), including errors of the statements run inside the block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

from monitor.storage import migrate
from monitor.storage.engine import translate_errors


class Database:
    """An engine with translated connections: ``connect()`` to read, ``begin()`` to write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with translate_errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with translate_errors(), self.engine.begin() as conn:
            yield conn

    def at_head(self) -> bool:
        """Readiness: True when the database answers and its migrations are at head (raises
        ``StorageError`` when it does not answer)."""
        with self.connect() as conn:
            conn.execute(text("SELECT 1"))
        return migrate.is_at_head(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
