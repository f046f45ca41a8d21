"""The field table of a prediction-log record: where each value comes from, its rule, its columns.

``FIELDS`` drives both ways a batch is turned into ``PredictionRow``s:

- ``FieldChecker.rows`` (fast): each field's column taken out of the records once and checked
  whole (``Rule.column``); any column that is not plainly valid returns None;
- ``record_values`` (slow, per record): each value checked alone (``Rule.value``), every
  problem named by record index and field key.

A new source (an integration, a file format) turns its payload into records keyed by
``Field.key`` (the HTTP API's prediction-log keys, plus ``model`` and ``features``) and hands
them to ``IngestService.predictions``; it never checks a field itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.errors import Problem
from monitor.ingest.rules import (
    Bounds,
    Column,
    Count,
    Identifier,
    Invalid,
    Irregular,
    Label,
    NonNegative,
    Output,
    Probabilities,
    Rule,
    Timestamp,
)
from monitor.ingest.text import json_problem
from monitor.storage.rows import PREDICTION_COLUMNS, PredictionRow

MAX_ID_LENGTH = 256


@dataclass(frozen=True)
class Field:
    key: str  # where the value is in a record
    columns: tuple[str, ...]  # the PredictionRow fields it fills
    rule: Rule
    keep_raw: tuple[type, ...] = ()  # values of these types go to ``extra`` under ``key``


FIELDS: tuple[Field, ...] = (
    Field("model_version", ("model_version",), Label("")),
    Field("prediction_id", ("prediction_id",), Identifier(MAX_ID_LENGTH)),
    Field("timestamp", ("ts",), Timestamp()),
    # structured output (scores per class, an LLM payload) is kept as sent
    Field("prediction", ("prediction", "prediction_text"), Output(), keep_raw=(dict, list)),
    Field("latency_ms", ("latency_ms",), NonNegative()),
    Field("status", ("status",), Label("ok")),
    Field("variant", ("variant",), Label("production")),
    Field("gpu_seconds", ("gpu_seconds",), NonNegative()),
    Field("tokens_in", ("tokens_in",), Count()),
    Field("tokens_out", ("tokens_out",), Count()),
    Field("probabilities", ("probabilities",), Probabilities()),
)
# the columns no field fills: the caller's model id, the feature arrays, everything else
OTHER_COLUMNS = ("model_id", "num", "cat", "extra")
KNOWN_FIELDS = frozenset({"model", "features", *(f.key for f in FIELDS)})


def unknown_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record's keys that are not prediction-log fields: kept in ``extra`` as sent."""
    if record.keys() <= KNOWN_FIELDS:
        return {}
    return {k: v for k, v in record.items() if k not in KNOWN_FIELDS}


def extra_problem(index: int, extra: Mapping[str, Any]) -> Problem | None:
    """The first key or string of ``extra`` (JSONB) PostgreSQL cannot store, named."""
    bad = json_problem(extra) if extra else None
    return Problem(bad[1], index=index, field=bad[0]) if bad else None


def record_values(
    index: int, record: Mapping[str, Any], bounds: Bounds, extra: dict[str, Any]
) -> tuple[dict[str, Any], list[Problem]]:
    """One record's field columns by name, and the problem of every field that breaks its rule."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for f in FIELDS:
        value = record.get(f.key)
        if f.keep_raw and isinstance(value, f.keep_raw):
            bad = json_problem(value, f.key)
            if bad:
                problems.append(Problem(bad[1], index=index, field=bad[0]))
            extra[f.key] = value
            values.update(dict.fromkeys(f.columns))
            continue
        try:
            values.update(zip(f.columns, f.rule.value(value, bounds), strict=True))
        except Invalid as exc:
            problems.append(Problem(exc.problem, index=index, field=f.key))
    return values, problems


class FieldChecker:
    """Column-wise checks for one batch; ``rows`` returns None when it needs the slow path."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds

    def rows(
        self, model_id: int, records: Sequence[Mapping[str, Any]], num: Column, cat: Column
    ) -> list[PredictionRow] | None:
        try:
            columns = self._columns(records)
        except Irregular:
            return None
        extra = [unknown_fields(r) or None for r in records]
        if any(e is not None and json_problem(e) for e in extra):
            return None
        columns.update(model_id=[model_id] * len(records), num=num, cat=cat, extra=extra)
        ordered = [columns[name] for name in PREDICTION_COLUMNS]
        return list(map(PredictionRow._make, zip(*ordered, strict=True)))

    def _columns(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Column]:
        columns: dict[str, Column] = {}
        for f in FIELDS:
            values = [r.get(f.key) for r in records]
            columns.update(zip(f.columns, f.rule.column(values, self.bounds), strict=True))
        return columns
