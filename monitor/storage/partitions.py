"""Daily range partitions of ``predictions``.

Created ahead of time and on demand by ingest; dropped whole by retention.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, Engine, text

from monitor.storage.engine import translate_errors

_PARTITION = re.compile(r"^predictions_p(\d{8})$")
_DDL_LOCK = 7_391_005


def partition_name(day: date) -> str:
    return f"predictions_p{day:%Y%m%d}"


def _create(conn: Connection, day: date) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF predictions "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    )


def existing_days(conn: Connection) -> list[date]:
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'predictions'::regclass"
        )
    ).scalars()
    days = []
    for name in names:
        match = _PARTITION.fullmatch(name)
        if match:
            days.append(datetime.strptime(match.group(1), "%Y%m%d").date())
    return sorted(days)


class Partitions:
    """Creates missing day partitions; remembers which exist so the hot path asks nothing."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._known: set[date] = set()
        self._mutex = threading.Lock()

    def ensure(self, days: Iterable[date]) -> list[date]:
        missing = sorted(set(days) - self._known)
        if not missing:
            return []
        with self._mutex, translate_errors(), self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _DDL_LOCK})
            present = set(existing_days(conn))
            created = [d for d in missing if d not in present]
            for day in created:
                _create(conn, day)
            self._known.update(missing)
        return created

    def ensure_ahead(self, today: date, days_ahead: int) -> list[date]:
        return self.ensure(today + timedelta(days=i) for i in range(-1, days_ahead + 1))

    def drop_before(self, cutoff: date) -> list[date]:
        """Drop whole days older than ``cutoff`` and the ids and labels that belonged to them."""
        cutoff_ts = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
        with self._mutex, translate_errors(), self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _DDL_LOCK})
            old = [d for d in existing_days(conn) if d < cutoff]
            for day in old:
                conn.execute(text(f"DROP TABLE IF EXISTS {partition_name(day)}"))
            conn.execute(text("DELETE FROM prediction_keys WHERE ts < :c"), {"c": cutoff_ts})
            conn.execute(text("DELETE FROM labels WHERE ts < :c"), {"c": cutoff_ts})
            self._known.difference_update(old)
        return old
