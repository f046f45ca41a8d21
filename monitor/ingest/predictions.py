"""Check prediction-log records and turn them into typed rows for COPY.

Every problem of every record is collected, so one 422 answer names them all; nothing is
written unless the whole batch is clean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from monitor.errors import Problem
from monitor.ingest.columns import encode_lists, encode_regular
from monitor.ingest.fields import KNOWN_FIELDS as KNOWN_FIELDS  # re-exported for callers
from monitor.ingest.fields import MAX_ID_LENGTH as MAX_ID_LENGTH
from monitor.ingest.fields import FieldChecker, extra_problem, record_values, unknown_fields
from monitor.ingest.names import feature_name_problem, model_name_problem
from monitor.ingest.rules import Bounds
from monitor.ingest.rules import parse_timestamp as parse_timestamp
from monitor.ingest.schema import FeatureSchema
from monitor.ingest.text import text_problem
from monitor.storage.rows import PredictionRow


@dataclass(frozen=True)
class Limits:
    max_features: int = 1_000
    max_string_length: int = 1_024
    retention_days: int = 30
    max_future_seconds: int = 3_600
    max_models: int = 1_000
    max_versions_per_model: int = 100
    max_variants_per_model: int = 20

    def bounds(self, now: datetime) -> Bounds:
        """What the field rules compare against for a batch received at ``now``."""
        return Bounds(
            now=now,
            oldest=now - timedelta(days=self.retention_days),
            newest=now + timedelta(seconds=self.max_future_seconds),
            retention_days=self.retention_days,
            max_length=self.max_string_length,
        )


@dataclass
class ModelBatch:
    """The records of one model within a request, with their positions in the request."""

    model: str
    indexes: list[int] = field(default_factory=list)
    records: list[Mapping[str, Any]] = field(default_factory=list)

    def features(self) -> list[Mapping[str, Any]]:
        return [r["features"] for r in self.records]

    def first_index_with(self, feature: str) -> int | None:
        """Position in the request of the first record that has ``feature``."""
        for index, record in zip(self.indexes, self.records, strict=True):
            if feature in record["features"]:
                return index
        return None


def group_by_model(
    records: Sequence[Any], limits: Limits
) -> tuple[dict[str, ModelBatch], list[Problem]]:
    """First pass: the shape every record must have before we can look at its model."""
    batches: dict[str, ModelBatch] = {}
    problems: list[Problem] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(Problem("record must be a JSON object", index=index))
            continue
        model = record.get("model")
        known = type(model) is str and model in batches
        bad = None if known else "is required" if model is None else model_name_problem(model)
        if bad:
            problems.append(Problem(bad, index=index, field="model"))
        features = record.get("features")
        if not isinstance(features, dict):
            problem = "is required" if features is None else "must be an object of name: value"
            problems.append(Problem(problem, index=index, field="features"))
        elif len(features) > limits.max_features:
            problems.append(
                Problem(
                    f"has {len(features)} features; the limit is {limits.max_features}",
                    index=index,
                    field="features",
                )
            )
        if bad or not isinstance(features, dict):
            continue
        name = str(model)
        batch = batches[name] if known else batches.setdefault(name, ModelBatch(name))
        batch.indexes.append(index)
        batch.records.append(record)
    return batches, problems


class RecordChecker:
    """Second pass, per model: typed arrays, optional fields, limits."""

    def __init__(
        self,
        model_id: int,
        schema: FeatureSchema,
        limits: Limits,
        now: datetime,
        reject_unknown: bool,
    ) -> None:
        self.model_id = model_id
        self.num_index = schema.num_index
        self.cat_index = schema.cat_index
        self.limits = limits
        self.reject_unknown = reject_unknown
        self.bounds = limits.bounds(now)

    def row(
        self,
        index: int,
        rec: Mapping[str, Any],
        problems: list[Problem],
        cells: tuple[Any, Any] | None = None,
    ) -> PredictionRow | None:
        """One typed row; ``cells`` are the record's (num, cat) when the fast path made them."""
        start = len(problems)
        extra = unknown_fields(rec)
        bad_extra = extra_problem(index, extra)
        if bad_extra:
            problems.append(bad_extra)
        if cells is None:
            num: list[float | None] = [None] * len(self.num_index)
            cat: list[str | None] = [None] * len(self.cat_index)
            unknown = self.features(index, rec["features"], num, cat, problems)
            if unknown:
                extra["unknown_features"] = unknown
            cells = (num or None, cat or None)
        values, bad = record_values(index, rec, self.bounds, extra)
        problems.extend(bad)
        if len(problems) > start:
            return None
        return PredictionRow(
            model_id=self.model_id, num=cells[0], cat=cells[1], extra=extra or None, **values
        )

    def features(
        self,
        index: int,
        features: Mapping[str, Any],
        num: list[float | None],
        cat: list[str | None],
        problems: list[Problem],
    ) -> dict[str, Any]:
        """Fill ``num``/``cat`` in schema order; return the features the schema does not know."""
        unknown: dict[str, Any] = {}
        for name, value in features.items():
            pos = self.num_index.get(name)
            if pos is not None:
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float):
                    problems.append(
                        Problem(
                            f"expected a number, got {type(value).__name__}",
                            index=index,
                            field=f"features.{name}",
                        )
                    )
                elif not math.isfinite(value):
                    problems.append(
                        Problem(
                            "must be finite (no NaN or infinity); send null for missing",
                            index=index,
                            field=f"features.{name}",
                        )
                    )
                else:
                    num[pos] = float(value)
                continue
            pos = self.cat_index.get(name)
            if pos is not None:
                if value is None:
                    continue
                text = self._category(value)
                if text is None:
                    problems.append(
                        Problem(
                            f"expected a string, got {type(value).__name__}",
                            index=index,
                            field=f"features.{name}",
                        )
                    )
                elif len(text) > self.limits.max_string_length:
                    problems.append(
                        Problem(
                            f"is {len(text)} characters; the limit is "
                            f"{self.limits.max_string_length}",
                            index=index,
                            field=f"features.{name}",
                        )
                    )
                elif text_problem(text):
                    problems.append(
                        Problem(str(text_problem(text)), index=index, field=f"features.{name}")
                    )
                else:
                    cat[pos] = text
                continue
            self._unknown(index, name, value, unknown, problems)
        return unknown

    def _unknown(
        self, index: int, name: str, value: Any, unknown: dict[str, Any], problems: list[Problem]
    ) -> None:
        where = f"features.{name}"
        bad = feature_name_problem(name)
        if bad:
            problems.append(Problem(bad, index=index, field=where))
        elif self.reject_unknown:
            problems.append(
                Problem("is not in the model's feature schema", index=index, field=where)
            )
        elif isinstance(value, dict | list):
            problems.append(
                Problem(
                    "feature values must be numbers, strings, booleans or null",
                    index=index,
                    field=where,
                )
            )
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(
                Problem("must be finite (no NaN or infinity)", index=index, field=where)
            )
        elif isinstance(value, str) and len(value) > self.limits.max_string_length:
            problems.append(Problem("string too long", index=index, field=where))
        elif isinstance(value, str) and text_problem(value):
            problems.append(Problem(str(text_problem(value)), index=index, field=where))
        else:
            unknown[name] = value

    @staticmethod
    def _category(value: Any) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        return None


def typed_rows(
    batch: ModelBatch,
    model_id: int,
    schema: FeatureSchema,
    limits: Limits,
    now: datetime,
    *,
    reject_unknown: bool = False,
) -> tuple[list[PredictionRow], list[Problem]]:
    """Check a model's records; rows carry their feature arrays already in COPY's binary form."""
    checker = RecordChecker(model_id, schema, limits, now, reject_unknown)
    problems: list[Problem] = []
    fast = encode_regular(batch.features(), schema, limits.max_string_length)
    if fast is not None:
        regular = FieldChecker(checker.bounds).rows(model_id, batch.records, *fast)
        if regular is not None:
            return regular, problems
    rows: list[PredictionRow] = []
    for pos, (index, record) in enumerate(zip(batch.indexes, batch.records, strict=True)):
        cells = (fast[0][pos], fast[1][pos]) if fast else None
        row = checker.row(index, record, problems, cells)
        if row is not None:
            rows.append(row)
    if fast is None and not problems:
        # without the fast path's cells, the slow path built every row's arrays as lists
        num, cat = encode_lists(
            cast("list[list[float | None] | None]", [r.num for r in rows]),
            cast("list[list[str | None] | None]", [r.cat for r in rows]),
        )
        rows = [r._replace(num=n, cat=c) for r, n, c in zip(rows, num, cat, strict=True)]
    return rows, problems


def first_per_id(rows: Sequence[PredictionRow]) -> list[PredictionRow]:
    """Drop repeats of a prediction_id within one batch (the first one wins)."""
    seen: set[str] = set()
    out: list[PredictionRow] = []
    for row in rows:
        pid = row.prediction_id
        if pid is not None:
            if pid in seen:
                continue
            seen.add(pid)
        out.append(row)
    return out
