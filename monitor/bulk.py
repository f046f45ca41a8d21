"""``monitor ingest FILE`` and ``monitor reference FILE``: files straight into PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from monitor.config import Settings
from monitor.errors import ValidationFailed
from monitor.ingest.file_errors import in_file_terms
from monitor.ingest.files import as_prediction_record, format_for_path, read_records
from monitor.jobs.drift import ensure_profiles
from monitor.runtime import database_url
from monitor.services import build_services
from monitor.storage import migrate


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _row_count(path: Path) -> int | None:
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )


def ingest_file(settings: Settings, path: Path, model: str, *, batch_size: int = 10_000) -> int:
    """Load prediction logs; each chunk is its own transaction (a re-run stores no duplicates
    for rows with a prediction_id)."""
    fmt = format_for_path(path)
    stored = received = 0
    with database_url(settings) as url:
        services = build_services(settings, url, registry=CollectorRegistry())
        migrate.upgrade(services.engine)
        with path.open("rb") as handle, _progress() as bar:
            task = bar.add_task(f"ingest {path.name}", total=_row_count(path))
            for chunk in read_records(handle, fmt, batch_size):
                records = [
                    as_prediction_record({k: _clean(v) for k, v in row.items()}, model)
                    for row in chunk
                ]
                try:
                    result = services.ingest.predictions(records)
                except ValidationFailed as exc:
                    raise in_file_terms(
                        exc, path.name, first_row=received, stored_before=received
                    ) from exc
                stored += result.stored
                received += result.received
                bar.advance(task, len(chunk))
        services.engine.dispose()
    print(f"{received} rows read, {stored} stored, {received - stored} duplicates skipped")
    return stored


def load_reference(settings: Settings, path: Path, model: str, version: str = "") -> int:
    fmt = format_for_path(path)
    with database_url(settings) as url:
        services = build_services(settings, url, registry=CollectorRegistry())
        migrate.upgrade(services.engine)
        with path.open("rb") as handle, _progress() as bar:
            task = bar.add_task(f"reference {path.name}", total=_row_count(path))

            def chunks() -> Iterator[list[dict[str, Any]]]:
                for chunk in read_records(handle, fmt):
                    bar.advance(task, len(chunk))
                    yield chunk

            try:
                result = services.references.upload(model, version, chunks())
            except ValidationFailed as exc:
                raise in_file_terms(exc, path.name) from exc
        ensure_profiles(services.context, services.models.require(model))
        services.engine.dispose()
    print(
        f"reference {result.reference_id} for {model} {version or '(all versions)'}: "
        f"{result.rows} rows"
    )
    return result.rows
