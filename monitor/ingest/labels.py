"""Check delayed ground-truth records: ``{"prediction_id", "model", "label", "timestamp"?}``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.errors import Problem
from monitor.ingest.names import model_name_problem
from monitor.ingest.predictions import MAX_ID_LENGTH, Limits, parse_timestamp

# (prediction_id, label, label_text, ts)
LabelRow = tuple[str, float | None, str | None, datetime]


def _label_value(value: object, limits: Limits) -> tuple[float | None, str | None] | str:
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None
    if isinstance(value, int | float):
        return (float(value), None) if math.isfinite(value) else "must be finite"
    if isinstance(value, str):
        return (None, value) if len(value) <= limits.max_string_length else "string too long"
    return "must be a number, string or boolean"


def _one(
    index: int, rec: Any, limits: Limits, now: datetime, problems: list[Problem]
) -> tuple[str, LabelRow] | None:
    if not isinstance(rec, dict):
        problems.append(Problem("label must be a JSON object", index=index))
        return None
    start = len(problems)
    model = rec.get("model")
    bad = "is required" if model is None else model_name_problem(model)
    if bad:
        problems.append(Problem(bad, index=index, field="model"))
    pid = rec.get("prediction_id")
    if isinstance(pid, int) and not isinstance(pid, bool):
        pid = str(pid)
    if not isinstance(pid, str) or not pid or len(pid) > MAX_ID_LENGTH:
        problems.append(
            Problem(
                "is required: a string of at most 256 characters",
                index=index,
                field="prediction_id",
            )
        )
    if "label" not in rec or rec["label"] is None:
        problems.append(Problem("is required", index=index, field="label"))
        value: tuple[float | None, str | None] | str = (None, None)
    else:
        value = _label_value(rec["label"], limits)
        if isinstance(value, str):
            problems.append(Problem(value, index=index, field="label"))
    try:
        ts = parse_timestamp(rec.get("timestamp"), now)
    except (ValueError, TypeError, OverflowError, OSError):
        problems.append(
            Problem("must be an ISO 8601 string or epoch seconds", index=index, field="timestamp")
        )
        ts = now
    if len(problems) > start or isinstance(value, str):
        return None
    return str(model), (str(pid), value[0], value[1], ts)


def check(
    records: Sequence[Any], limits: Limits, now: datetime
) -> tuple[dict[str, list[LabelRow]], list[Problem]]:
    problems: list[Problem] = []
    by_model: dict[str, dict[str, LabelRow]] = {}
    for index, rec in enumerate(records):
        item = _one(index, rec, limits, now, problems)
        if item is not None:
            by_model.setdefault(item[0], {})[item[1][0]] = item[1]  # the last label per id wins
    return {m: list(rows.values()) for m, rows in by_model.items()}, problems
