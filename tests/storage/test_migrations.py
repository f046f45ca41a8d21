"""Alembic is the only thing that creates tables; the migrations match the table definitions."""

from __future__ import annotations

import uuid

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from monitor.storage import migrate
from monitor.storage.databases import create_database, drop_database
from monitor.storage.engine import make_engine
from monitor.storage.tables import metadata


def test_upgrade_from_empty_reaches_head_and_matches_tables(admin_url: str) -> None:
    name = f"mm_mig_{uuid.uuid4().hex[:8]}"
    engine = make_engine(create_database(admin_url, name))
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.is_at_head(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.is_at_head(engine)
    finally:
        engine.dispose()
        drop_database(admin_url, name)


def test_single_head() -> None:
    from alembic.script import ScriptDirectory

    assert len(ScriptDirectory.from_config(migrate.alembic_config()).get_heads()) == 1
