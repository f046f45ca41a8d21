"""Where the database is: the configured URL, or the embedded server under MONITOR_DATA_DIR."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from monitor.config import Settings
from monitor.embedded import embedded_database


@contextmanager
def database_url(settings: Settings, *, announce: bool = True) -> Iterator[str]:
    """Yield a PostgreSQL URL for the duration of the block.

    With no MONITOR_DATABASE_URL the embedded server is joined if running, else started here
    and stopped again when the block ends; which one, and how, is said on stderr (stdout stays
    the command's output, e.g. a token or a table).
    """
    if settings.database_url:
        yield settings.database_url
        return
    with embedded_database(settings.data_dir, user=settings.embedded_user) as server:
        if announce:
            how = (
                "started"
                if server.started_here
                else "adopted orphaned (its starting process is gone; stopped on exit)"
                if server.adopted
                else "joined running"
            )
            print(
                f"embedded PostgreSQL: {how} under {server.pgdata} ({server.describe()})",
                file=sys.stderr,
            )
        url = server.url
        yield url
