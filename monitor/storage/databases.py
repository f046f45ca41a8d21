"""Whole databases on a server: created and dropped by the test suite and the benchmarks.

``admin`` is a libpq URL of a role that may create databases; the functions return (or take)
the URL of the named database on the same server, keeping the admin URL's query (e.g. host=).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


def url_of(admin: str, name: str) -> str:
    base, _, query = admin.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def create_database(admin: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        tpl = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{tpl}')
    return url_of(admin, name)


def drop_database(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(admin: str, prefix: str) -> Iterator[str]:
    """A new, empty database named ``<prefix>_<random>`` for the block, dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = create_database(admin, name)
    try:
        yield url
    finally:
        drop_database(admin, name)
