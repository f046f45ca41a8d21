"""Set a model's reference data set from a file/body, or by freezing a production window."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from monitor.errors import Problem, ValidationFailed
from monitor.ingest.files import split_reference_row
from monitor.ingest.predictions import Limits, RecordChecker
from monitor.ingest.rules import Bounds, Invalid, Probabilities
from monitor.ingest.schema import FeatureSchema, infer_schema
from monitor.ingest.text import text_problem
from monitor.storage import references
from monitor.storage.database import Database
from monitor.storage.models import ModelStore
from monitor.storage.rows import ReferenceRow

MAX_REPORTED_PROBLEMS = 100
_SCORES = Probabilities()


@dataclass(frozen=True)
class ReferenceResult:
    reference_id: int
    model: str
    model_version: str
    rows: int
    source: str

    def as_body(self) -> dict[str, Any]:
        return {
            "reference_id": self.reference_id,
            "model": self.model,
            "model_version": self.model_version or None,
            "rows": self.rows,
            "source": self.source,
        }


def _missing_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _split(value: Any) -> tuple[float | None, str | None]:
    value = _missing_if_nan(value)
    if value is None:
        return None, None
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None
    if isinstance(value, int | float):
        return float(value), None
    return None, str(value)


def _probabilities(
    index: int, value: Any, bounds: Bounds, problems: list[Problem]
) -> dict[str, Any] | None:
    """A row's class scores checked as a prediction log's are (a CSV's empty cell is NaN)."""
    if isinstance(value, dict):
        value = {k: _missing_if_nan(v) for k, v in value.items()}
    try:
        return _SCORES.value(value, bounds)[0]
    except Invalid as exc:
        problems.append(Problem(exc.problem, index=index, field="probabilities"))
        return None


class ReferenceService:
    def __init__(self, engine: Engine, models: ModelStore, limits: Limits) -> None:
        self.engine = engine
        self.db = Database(engine)
        self.models = models
        self.limits = limits

    def _typed(
        self,
        chunk: list[dict[str, Any]],
        offset: int,
        checker: RecordChecker,
        problems: list[Problem],
    ) -> list[ReferenceRow]:
        out: list[ReferenceRow] = []
        for i, row in enumerate(chunk):
            fields = split_reference_row(row)
            prediction, label = fields.prediction, fields.label
            features = {k: _missing_if_nan(v) for k, v in fields.features.items()}
            num: list[float | None] = [None] * len(checker.num_index)
            cat: list[str | None] = [None] * len(checker.cat_index)
            before = len(problems)
            checker.features(offset + i, features, num, cat, problems)
            for name, value in (("prediction", prediction), ("label", label)):
                bad = text_problem(value) if isinstance(value, str) else None
                if bad:
                    problems.append(Problem(bad, index=offset + i, field=name))
            scores = fields.probabilities
            probabilities = _probabilities(offset + i, scores, checker.bounds, problems)
            if len(problems) == before:
                out.append(
                    ReferenceRow(
                        num or None,
                        cat or None,
                        *_split(prediction),
                        *_split(label),
                        probabilities,
                    )
                )
        return out

    def upload(
        self, model: str, version: str, chunks: Iterable[list[dict[str, Any]]]
    ) -> ReferenceResult:
        """Store a whole data set in one transaction; any bad row rejects all of it."""
        iterator: Iterator[list[dict[str, Any]]] = iter(chunks)
        first = next(iterator, [])
        if not first:
            raise ValidationFailed("the reference data set has no rows")
        schema = self._schema(model, first)
        problems: list[Problem] = []
        rows = 0
        with self.db.begin() as conn:
            record = self.models.ensure_in(conn, model, schema)
            checker = RecordChecker(
                record.id, record.schema, self.limits, datetime.now(UTC), reject_unknown=False
            )
            ref_id = references.create_set(conn, record.id, version, "upload")
            offset = 0
            for chunk in itertools.chain([first], iterator):
                typed = self._typed(chunk, offset, checker, problems)
                if problems:
                    break
                rows += references.copy_rows(conn, ref_id, typed)
                offset += len(chunk)
            if problems:
                raise ValidationFailed(
                    "the reference data set has invalid rows; nothing was stored",
                    problems[:MAX_REPORTED_PROBLEMS],
                )
            references.activate(conn, ref_id, record.id, version, rows)
        return ReferenceResult(ref_id, model, version, rows, "upload")

    def _schema(self, model: str, sample: list[dict[str, Any]]) -> FeatureSchema:
        record = self.models.get(model)
        if record is not None and record.schema:
            return record.schema
        features = [
            {k: _missing_if_nan(v) for k, v in split_reference_row(r).features.items()}
            for r in sample
        ]
        schema, problems = infer_schema(features)
        if problems:
            raise ValidationFailed(
                "cannot infer the feature schema from the reference data",
                [Problem(p, field=f"features.{n}") for n, p in problems.items()],
            )
        return schema

    def freeze_window(
        self, model: str, version: str, start: datetime, end: datetime
    ) -> ReferenceResult:
        if end <= start:
            raise ValidationFailed(
                "'to' must be after 'from'", [Problem("must be after 'from'", field="to")]
            )
        record = self.models.require(model)
        with self.db.begin() as conn:
            ref_id = references.create_set(conn, record.id, version, "window", (start, end))
            rows = references.copy_window(conn, ref_id, record.id, version or None, start, end)
            if rows == 0:
                raise ValidationFailed(
                    f"no predictions of {model!r} between {start.isoformat()} and {end.isoformat()}"
                )
            references.activate(conn, ref_id, record.id, version, rows)
        return ReferenceResult(ref_id, model, version, rows, "window")
