"""Synthetic data for the drift and quality job tests: models, references and predictions
written straight into PostgreSQL (binary COPY), so thousands of rows take milliseconds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from psycopg.types.json import Jsonb

from monitor.ingest.schema import CATEGORICAL, NUMERIC, Feature, FeatureSchema
from monitor.jobs.base import Window
from monitor.services import Services
from monitor.storage import references
from monitor.storage.drift.colscan import driver
from monitor.storage.models import ModelRecord
from monitor.storage.rows import ReferenceRow

Matrix = npt.NDArray[Any]


def make_model(
    services: Services,
    name: str,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    **config: Any,
) -> ModelRecord:
    schema = FeatureSchema(
        tuple(Feature(n, NUMERIC) for n in numeric)
        + tuple(Feature(n, CATEGORICAL) for n in categorical)
    )
    record, _ = services.models.put(
        name, task="classification", schema=schema, prediction_kind=None, config=config
    )
    return record


def _cells(row: Any) -> list[Any] | None:
    if row is None:
        return None
    return [None if (isinstance(v, float) and np.isnan(v)) else v for v in row]


def insert_predictions(
    services: Services,
    model: ModelRecord,
    ts: Sequence[datetime],
    num: Matrix | None = None,
    cat: Matrix | None = None,
    *,
    version: str = "",
    prediction: Sequence[float] | None = None,
    extra: Sequence[dict[str, Any] | None] | None = None,
    ids: Sequence[str] | None = None,
) -> None:
    """Rows as ingest would store them (NaN / None = missing); received now, at commit."""
    services.partitions.ensure({t.astimezone(UTC).date() for t in ts})
    with services.engine.begin() as conn, driver(conn).cursor() as cur:
        sql = (
            "COPY predictions (model_id, model_version, prediction_id, ts, num, cat, prediction, "
            "extra) FROM STDIN (FORMAT BINARY)"
        )
        with cur.copy(sql) as copy:
            copy.set_types(
                ["int4", "text", "text", "timestamptz", "float8[]", "text[]", "float8", "jsonb"]
            )
            for i, t in enumerate(ts):
                copy.write_row(
                    (
                        model.id,
                        version,
                        ids[i] if ids is not None else None,
                        t,
                        _cells(num[i]) if num is not None else None,
                        _cells(cat[i]) if cat is not None else None,
                        prediction[i] if prediction is not None else None,
                        Jsonb(extra[i]) if extra is not None and extra[i] is not None else None,
                    )
                )


def set_reference(
    services: Services,
    model: ModelRecord,
    num: Matrix | None = None,
    cat: Matrix | None = None,
    *,
    version: str = "",
    prediction: Sequence[float] | None = None,
    label: Sequence[float] | None = None,
) -> int:
    rows = len(num) if num is not None else len(cat) if cat is not None else 0
    data = [
        ReferenceRow(
            _cells(num[i]) if num is not None else None,
            _cells(cat[i]) if cat is not None else None,
            prediction[i] if prediction is not None else None,
            None,
            label[i] if label is not None else None,
            None,
        )
        for i in range(rows)
    ]
    with services.engine.begin() as conn:
        ref_id = references.create_set(conn, model.id, version, "upload")
        references.copy_rows(conn, ref_id, data)
        references.activate(conn, ref_id, model.id, version, rows)
    return ref_id


def spread(end: datetime, n: int, hours: float, rng: np.random.Generator) -> list[datetime]:
    """``n`` timestamps spread at random over the ``hours`` before ``end``."""
    offsets = rng.uniform(0.0, hours * 3600.0, size=n)
    return [end - timedelta(seconds=float(s)) - timedelta(microseconds=1) for s in offsets]


def window(name: str, end: datetime) -> Window:
    return Window.ending(name, end)


def now() -> datetime:
    return datetime.now(UTC)
