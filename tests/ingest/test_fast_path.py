"""The column-wise fast path gives exactly the rows the record-by-record checker gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from monitor.ingest import predictions
from monitor.ingest.fields import FieldChecker
from monitor.ingest.predictions import Limits, group_by_model, typed_rows
from monitor.ingest.schema import infer_schema


def regular_batch(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        rec: dict[str, Any] = {
            "model": "m",
            "features": {
                "a": float(rng.normal()) if rng.random() > 0.1 else None,
                "b": int(rng.integers(0, 5)),
                "c": str(rng.choice(["x", "y", "zé"])) if rng.random() > 0.1 else None,
            },
        }
        if i % 2:
            rec.update(
                prediction_id=f"id-{i}",
                model_version="2.0",
                variant="canary",
                timestamp=(now - timedelta(minutes=i)).isoformat(),
                latency_ms=i,
                status="ok" if i % 3 else "timeout",
                gpu_seconds=0.5,
                tokens_in=i,
            )
        if i % 5 == 0:
            rec["prediction"] = float(rng.random())
        if i % 7 == 0:
            rec["trace"] = {"span": i}
        if i % 3 == 0:
            p = float(rng.random())
            rec["probabilities"] = {"cat": p, "dog": 1 - p} if i % 2 else {"cat": 1, "dog": 0}
        out.append(rec)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_and_slow_paths_agree(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    records = regular_batch(np.random.default_rng(seed), 300)
    limits = Limits()
    now = datetime.now(UTC)
    schema, problems = infer_schema(r["features"] for r in records)
    assert not problems
    (batch,) = group_by_model(records, limits)[0].values()
    taken: list[bool] = []
    original = FieldChecker.rows

    def spy(self: FieldChecker, *args: Any) -> Any:
        rows = original(self, *args)
        taken.append(rows is not None)
        return rows

    monkeypatch.setattr(FieldChecker, "rows", spy)
    fast, fast_problems = typed_rows(batch, 7, schema, limits, now)
    assert taken == [True]  # the batch really went the fast way
    monkeypatch.setattr(predictions, "encode_regular", lambda *_: None)
    slow, slow_problems = typed_rows(batch, 7, schema, limits, now)
    assert fast_problems == slow_problems == []
    assert fast == slow


def test_an_irregular_value_still_gets_named(monkeypatch: pytest.MonkeyPatch) -> None:
    records = regular_batch(np.random.default_rng(4), 50)
    records[17]["latency_ms"] = -3
    records[30]["status"] = "not a label!"
    schema, _ = infer_schema(r["features"] for r in records)
    (batch,) = group_by_model(records, Limits())[0].values()
    _, problems = typed_rows(batch, 7, schema, Limits(), datetime.now(UTC))
    assert [(p.index, p.field) for p in problems] == [(17, "latency_ms"), (30, "status")]
