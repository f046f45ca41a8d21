"""Check delayed ground-truth records: ``{"prediction_id", "model", "label", "timestamp"?}``.

The label takes the rule of a prediction's output, the id that of a prediction's id (here
required) and the timestamp that of a prediction's: the same field rules as prediction logs
(``ingest.rules``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.errors import Problem
from monitor.ingest.fields import MAX_ID_LENGTH
from monitor.ingest.names import model_name_problem
from monitor.ingest.predictions import Limits
from monitor.ingest.rules import Bounds, Identifier, Invalid, Output, Timestamp
from monitor.storage.rows import LabelRow

_ID = Identifier(MAX_ID_LENGTH)
_LABEL = Output()
_TIMESTAMP = Timestamp()  # within retention (older labels would be dropped) and the near future


def _one(
    index: int, rec: Any, bounds: Bounds, problems: list[Problem]
) -> tuple[str, LabelRow] | None:
    if not isinstance(rec, dict):
        problems.append(Problem("label must be a JSON object", index=index))
        return None
    start = len(problems)
    model = rec.get("model")
    bad = "is required" if model is None else model_name_problem(model)
    if bad:
        problems.append(Problem(bad, index=index, field="model"))
    pid: str | None = None
    with contextlib.suppress(Invalid):  # named below, with the rule's "required" message
        (pid,) = _ID.value(rec.get("prediction_id"), bounds)
    if pid is None:
        problems.append(
            Problem(
                f"is required: a string of at most {MAX_ID_LENGTH} characters",
                index=index,
                field="prediction_id",
            )
        )
    value: tuple[float | None, str | None] = (None, None)
    if rec.get("label") is None:
        problems.append(Problem("is required", index=index, field="label"))
    else:
        try:
            value = _LABEL.value(rec["label"], bounds)
        except Invalid as exc:
            problems.append(Problem(exc.problem, index=index, field="label"))
    ts = bounds.now
    try:
        (ts,) = _TIMESTAMP.value(rec.get("timestamp"), bounds)
    except Invalid as exc:
        problems.append(Problem(exc.problem, index=index, field="timestamp"))
    if len(problems) > start or pid is None:
        return None
    return str(model), LabelRow(pid, value[0], value[1], ts)


def check(
    records: Sequence[Any], limits: Limits, now: datetime
) -> tuple[dict[str, list[LabelRow]], list[Problem]]:
    bounds = limits.bounds(now)
    problems: list[Problem] = []
    by_model: dict[str, dict[str, LabelRow]] = {}
    for index, rec in enumerate(records):
        item = _one(index, rec, bounds, problems)
        if item is not None:
            by_model.setdefault(item[0], {})[item[1].prediction_id] = item[1]  # last one wins
    return {m: list(rows.values()) for m, rows in by_model.items()}, problems
