"""Daily partitions: created ahead and on demand, dropped by retention with their ids and labels."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from monitor.jobs.maintenance import run_maintenance
from monitor.services import Services
from monitor.storage.partitions import existing_days
from tests.api.helpers import count, record


def days(services: Services) -> list[date]:
    with services.engine.connect() as conn:
        return existing_days(conn)


def test_partitions_are_created_ahead(services: Services) -> None:
    today = datetime.now(UTC).date()
    run_maintenance(services)
    ahead = services.settings.partition_days_ahead
    expected = [today + timedelta(days=i) for i in range(-1, ahead + 1)]
    assert days(services) == expected


def test_ingest_creates_the_partition_it_needs(services: Services) -> None:
    stamp = datetime.now(UTC) - timedelta(days=12)
    services.ingest.predictions([record(0, timestamp=stamp.isoformat())])
    assert stamp.date() in days(services)


def test_retention_drops_old_days_with_their_labels_and_stale_keys(services: Services) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=20)
    services.ingest.predictions([record(0, timestamp=old.isoformat()), record(1)])
    services.ingest.labels(
        [{"model": "fraud", "prediction_id": "p-0", "label": 1, "timestamp": old.isoformat()}]
    )
    later = now + timedelta(days=services.settings.retention_days - 15)
    result = run_maintenance(services, now=later)
    assert old.date().isoformat() in result["dropped"]
    assert old.date() not in days(services)
    assert count(services.engine, "predictions") == 1
    assert count(services.engine, "labels") == 0
    with services.engine.connect() as conn:
        assert conn.execute(text("SELECT prediction_id FROM predictions")).scalar() == "p-1"
    # ids are remembered for the retention period after they were first seen
    assert count(services.engine, "prediction_keys") == 2
    run_maintenance(services, now=now + timedelta(days=services.settings.retention_days + 2))
    assert count(services.engine, "prediction_keys") == 0
