"""Checked features kept for later: their JSON form gives back the same arrays."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson

from monitor.ingest.prechecked import FeatureCells, rows_with_features
from monitor.ingest.predictions import Limits
from monitor.storage.arrays import EncodedArray, encode_float8_rows, encode_text_rows


def cells() -> FeatureCells:
    num = encode_float8_rows(np.array([[1.0, np.nan], [2.5, 3.0]]))
    cat = encode_text_rows([["a", None], ["b", "c"]])
    return FeatureCells("m", 7, [num[0], None], [cat[0], cat[1]], [{"tag": "x"}, None])


def test_the_json_form_gives_back_the_same_arrays() -> None:
    before = cells()
    after = FeatureCells.from_json("m", orjson.loads(orjson.dumps(before.to_json())))
    assert after == before
    assert all(c is None or isinstance(c, EncodedArray) for c in after.num + after.cat)


def test_joined_batches_keep_their_row_order() -> None:
    both = FeatureCells.joined([cells(), cells()])
    assert len(both) == 4
    assert both.unknown == [{"tag": "x"}, None, {"tag": "x"}, None]


def test_rows_carry_the_checked_features_and_their_own_fields() -> None:
    now = datetime.now(UTC)
    records = [
        {"model": "m", "prediction_id": "k:0", "prediction": 1, "features": {}},
        {"model": "m", "prediction_id": "k:1", "prediction": "yes", "features": {}},
    ]
    rows, problems = rows_with_features(cells(), records, Limits(), now)
    assert problems == []
    assert [r.num for r in rows] == cells().num
    assert [r.prediction_id for r in rows] == ["k:0", "k:1"]
    assert rows[0].extra == {"unknown_features": {"tag": "x"}}
    assert rows[1].prediction_text == "yes"


def test_a_bad_field_is_named_with_its_record() -> None:
    records = [
        {"model": "m", "prediction": 1, "features": {}},
        {"model": "m", "prediction": 1, "latency_ms": -1, "features": {}},
    ]
    rows, problems = rows_with_features(cells(), records, Limits(), datetime.now(UTC))
    assert rows == []
    assert [(p.index, p.field) for p in problems] == [(1, "latency_ms")]


def test_split_gives_back_the_joined_batches() -> None:
    one, two = cells(), cells()
    assert FeatureCells.joined([one, two]).split([2, 2]) == [one, two]
