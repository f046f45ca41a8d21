"""Shared fixtures: a real PostgreSQL for every test that needs one.

Point the suite at a server with MONITOR_TEST_DATABASE_URL (an admin URL: tests create and drop
their own databases there). Without it, the suite starts the embedded PostgreSQL in a temp dir.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from monitor.api.app import create_app
from monitor.config import Settings
from monitor.embedded import EmbeddedPostgres
from monitor.services import Services, build_services
from monitor.storage import migrate
from monitor.storage.databases import create_database, drop_database
from monitor.storage.engine import libpq_url, make_engine


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    configured = os.environ.get("MONITOR_TEST_DATABASE_URL")
    if configured:
        yield libpq_url(configured)
        return
    server = EmbeddedPostgres(reachable_tmp_dir("mm-test-pg-"))
    url = server.ensure_running()
    try:
        yield url
    finally:
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)


def reachable_tmp_dir(prefix: str) -> Path:
    """A temp dir the embedded server's unprivileged user can reach (pytest's own tmp dirs
    are private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def template_db(admin_url: str) -> Iterator[str]:
    """A database migrated to head once; each test clones it."""
    name = f"mm_tpl_{uuid.uuid4().hex[:8]}"
    url = create_database(admin_url, name)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    drop_database(admin_url, name)


@pytest.fixture
def db_url(admin_url: str, template_db: str) -> Iterator[str]:
    name = f"mm_t_{uuid.uuid4().hex[:10]}"
    url = create_database(admin_url, name, template=template_db)
    yield url
    drop_database(admin_url, name)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, data_dir=Path("/nonexistent"), api_tokens=[])


@pytest.fixture
def services(settings: Settings, db_url: str) -> Iterator[Services]:
    svc = build_services(settings, db_url, registry=CollectorRegistry())
    yield svc
    svc.engine.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as test_client:
        yield test_client
