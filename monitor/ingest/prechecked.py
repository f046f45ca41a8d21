"""Features checked now, the rest of their records later: a paired source's first half.

A source that gets a call's features and its prediction in two messages (the KServe logger's
request and response events) checks the features when they arrive, so a bad one is refused
then, and keeps what the check made: each row's typed arrays, already in COPY's binary form, and
the features the schema did not know. When the other half comes, only the record fields it adds
(prediction, status, latency, ...) are checked; the features are not walked again.

The arrays stay valid while the model keeps its id: a schema only grows, and rows written under
an older schema are rows with shorter arrays (see ``ingest.schema``).
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.errors import Problem
from monitor.ingest.fields import FieldChecker
from monitor.ingest.predictions import Limits, RecordChecker
from monitor.ingest.schema import FeatureSchema
from monitor.storage.arrays import EncodedArray, EncodedTextArray
from monitor.storage.rows import PredictionRow

Unknown = dict[str, Any] | None


@dataclass(frozen=True)
class FeatureCells:
    """The checked features of a batch of one model, row by row."""

    model: str
    model_id: int
    num: list[EncodedArray | None]
    cat: list[EncodedArray | None]
    unknown: list[Unknown]

    def __len__(self) -> int:
        return len(self.num)

    @classmethod
    def of(cls, model: str, rows: Sequence[PredictionRow]) -> FeatureCells:
        extras = [r.extra or {} for r in rows]
        return cls(
            model,
            rows[0].model_id,
            [_encoded(r.num, EncodedArray) for r in rows],
            [_encoded(r.cat, EncodedTextArray) for r in rows],
            [e.get("unknown_features") for e in extras],
        )

    @classmethod
    def joined(cls, parts: Sequence[FeatureCells]) -> FeatureCells:
        """Several batches of one model (checked under the same model id) as one."""
        first = parts[0]
        if any((p.model, p.model_id) != (first.model, first.model_id) for p in parts):
            raise ValueError("checked features of one model id only")
        return cls(
            first.model,
            first.model_id,
            [c for p in parts for c in p.num],
            [c for p in parts for c in p.cat],
            [u for p in parts for u in p.unknown],
        )

    def split(self, sizes: Sequence[int]) -> list[FeatureCells]:
        """The batches ``joined`` made this of, by their numbers of rows."""
        if sum(sizes) != len(self):
            raise ValueError("the sizes must add up to the rows")
        out: list[FeatureCells] = []
        at = 0
        for n in sizes:
            part = slice(at, at + n)
            out.append(
                FeatureCells(
                    self.model, self.model_id, self.num[part], self.cat[part], self.unknown[part]
                )
            )
            at += n
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON form: the arrays as one compressed base64 string each, plus each row's
        length (-1: no array), so keeping a call's features costs PostgreSQL one short string,
        not a value a cell."""
        return {
            "model_id": self.model_id,
            **_packed("num", self.num),
            **_packed("cat", self.cat),
            "unknown": self.unknown if any(self.unknown) else None,
        }

    @classmethod
    def from_json(cls, model: str, raw: Mapping[str, Any]) -> FeatureCells:
        num = _unpacked(raw["num"], raw["num_sizes"], EncodedArray)
        cat = _unpacked(raw["cat"], raw["cat_sizes"], EncodedTextArray)
        return cls(model, int(raw["model_id"]), num, cat, raw["unknown"] or [None] * len(num))


def _encoded(cell: object, kind: type[EncodedArray]) -> EncodedArray | None:
    if cell is None or isinstance(cell, kind):
        return cell
    if not isinstance(cell, EncodedArray):
        raise TypeError("checked rows carry their arrays encoded")
    return kind(cell)


def _packed(name: str, cells: Sequence[EncodedArray | None]) -> dict[str, Any]:
    joined = b"".join(c for c in cells if c is not None)
    sizes = [-1 if c is None else len(c) for c in cells]
    packed = base64.b64encode(zlib.compress(joined, 1)).decode()  # level 1: fast, half size
    return {name: packed, f"{name}_sizes": sizes}


def _unpacked(
    text: str, sizes: Sequence[int], kind: type[EncodedArray]
) -> list[EncodedArray | None]:
    raw = zlib.decompress(base64.b64decode(text))
    out: list[EncodedArray | None] = []
    at = 0
    for size in sizes:
        if size < 0:
            out.append(None)
            continue
        out.append(kind(raw[at : at + size]))
        at += size
    return out


def rows_with_features(
    cells: FeatureCells, records: Sequence[Mapping[str, Any]], limits: Limits, now: datetime
) -> tuple[list[PredictionRow], list[Problem]]:
    """Typed rows of ``records`` (their ``features`` ignored) carrying ``cells``' features; the
    record fields are checked as every batch's are, column-wise first, else record by record
    so each problem is named."""
    if len(records) != len(cells):
        raise ValueError("one record per row of checked features")
    checker = FieldChecker(limits.bounds(now))
    rows = checker.rows(cells.model_id, records, list(cells.num), list(cells.cat))
    problems: list[Problem] = []
    if rows is None:
        slow = RecordChecker(cells.model_id, FeatureSchema(), limits, now, reject_unknown=False)
        typed = [
            slow.row(i, r, problems, (cells.num[i], cells.cat[i])) for i, r in enumerate(records)
        ]
        if problems:
            return [], problems
        rows = [r for r in typed if r is not None]
    return [_with_unknown(r, u) for r, u in zip(rows, cells.unknown, strict=True)], problems


def _with_unknown(row: PredictionRow, unknown: Unknown) -> PredictionRow:
    if not unknown:
        return row
    return row._replace(extra={**(row.extra or {}), "unknown_features": unknown})
