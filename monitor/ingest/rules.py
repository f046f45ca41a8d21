"""What one prediction-log field may hold, stated once for both ways a batch is checked.

Each rule checks and normalises a value two ways, side by side so they cannot drift apart:

- ``column(values)``: a whole batch's column at once, with set operations over the value
  types and a few vectorised comparisons. It accepts only plainly valid columns, and raises
  ``Irregular`` for anything else (the batch then goes the record-by-record way).
- ``value(v)``: one record's value, which names the problem (``Invalid``) or normalises it.

For any column ``column`` accepts, it returns exactly what ``value`` returns value by value
(``tests/ingest/test_fast_path.py`` checks it). A rule fills one or more row columns, so both
return one entry per column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from monitor.ingest.names import label_value_problem
from monitor.ingest.text import all_storable, text_problem

Column = list[Any]

_NONE = type(None)
_TEXT = frozenset({str, _NONE})
_NUMBER = frozenset({int, float, _NONE})
_INTEGER = frozenset({int, _NONE})
_INT4_MAX = 2**31
_KNOWN_LABELS_MAX = 10_000


class Irregular(Exception):
    """This column needs the record-by-record check."""


class Invalid(Exception):
    """One value breaks its field's rule; ``problem`` says how."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass
class Bounds:
    """What the rules compare against for one batch (and labels already known valid)."""

    now: datetime
    oldest: datetime
    newest: datetime
    retention_days: int
    max_length: int
    known_labels: set[str] = field(default_factory=set)


class Rule(Protocol):
    def column(self, values: Column, bounds: Bounds, /) -> tuple[Column, ...]: ...

    def value(self, value: Any, bounds: Bounds, /) -> tuple[Any, ...]: ...


def _require(ok: bool) -> None:
    if not ok:
        raise Irregular


def _storable(text: str) -> None:
    problem = text_problem(text)
    if problem:
        raise Invalid(problem)


def _longest(column: Column) -> int:
    return max(map(len, filter(None, column)), default=0)


def parse_timestamp(value: object, now: datetime) -> datetime:
    if value is None:
        return now
    if isinstance(value, str):
        if text_problem(value):  # fromisoformat reads up to a NUL and ignores the rest
            raise ValueError(
                f"must be an ISO 8601 string or epoch seconds; it {text_problem(value)}"
            )
        ts = datetime.fromisoformat(value)
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return datetime.fromtimestamp(value, UTC)
    raise ValueError("must be an ISO 8601 string or epoch seconds")


@dataclass(frozen=True)
class Label:
    """A Prometheus label value (model_version, status, variant); missing means ``default``."""

    default: str

    def column(self, values: Column, bounds: Bounds, /) -> tuple[Column]:
        _require(_TEXT.issuperset(map(type, values)))
        distinct = set(values)
        distinct.discard(None)
        fresh = distinct - bounds.known_labels
        _require(not any(label_value_problem(v) for v in fresh))
        if len(bounds.known_labels) < _KNOWN_LABELS_MAX:
            bounds.known_labels.update(fresh)
        return ([self.default if v is None else v for v in values] if None in values else values,)

    def value(self, value: Any, _bounds: Bounds, /) -> tuple[str]:
        if value is None:
            return (self.default,)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise Invalid("must be a string")
        bad = label_value_problem(value)
        if bad:
            raise Invalid(bad)
        return (value,)


@dataclass(frozen=True)
class Identifier:
    """An optional id (prediction_id): a non-empty string, or a whole number taken as one."""

    max_length: int

    def column(self, values: Column, _bounds: Bounds, /) -> tuple[Column]:
        _require(_TEXT.issuperset(map(type, values)) and "" not in values)
        _require(_longest(values) <= self.max_length and all_storable(values))
        return (values,)

    def value(self, value: Any, _bounds: Bounds, /) -> tuple[str | None]:
        if value is None:
            return (None,)
        if isinstance(value, int) and not isinstance(value, bool):
            return (str(value),)
        if not isinstance(value, str) or not value or len(value) > self.max_length:
            raise Invalid(f"must be a non-empty string of at most {self.max_length} characters")
        _storable(value)
        return (value,)


@dataclass(frozen=True)
class Timestamp:
    """ISO 8601 (UTC when it has no offset) or epoch seconds, within retention and the near
    future; missing means now."""

    def column(self, values: Column, bounds: Bounds, /) -> tuple[Column]:
        _require(_TEXT.issuperset(map(type, values)) and all_storable(values))
        try:
            stamps = [bounds.now if v is None else datetime.fromisoformat(v) for v in values]
        except ValueError as exc:
            raise Irregular from exc
        stamps = [ts if ts.tzinfo else ts.replace(tzinfo=UTC) for ts in stamps]
        _require(bounds.oldest <= min(stamps) and max(stamps) <= bounds.newest)
        return (stamps,)

    def value(self, value: Any, bounds: Bounds, /) -> tuple[datetime]:
        try:
            ts = parse_timestamp(value, bounds.now)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        except (TypeError, OverflowError, OSError) as exc:
            raise Invalid("invalid timestamp") from exc
        return (within_bounds(ts, bounds),)


def within_bounds(ts: datetime, bounds: Bounds) -> datetime:
    """``ts`` (aware) when it lies within retention and the near future: the range of
    prediction, label and event timestamps alike."""
    if ts < bounds.oldest:
        raise Invalid(f"is older than the retention period ({bounds.retention_days} days)")
    if ts > bounds.newest:
        raise Invalid("is in the future")
    return ts


@dataclass(frozen=True)
class NonNegative:
    """An optional finite number >= 0 (latency, GPU seconds)."""

    def column(self, values: Column, _bounds: Bounds, /) -> tuple[Column]:
        _require(_NUMBER.issuperset(map(type, values)))
        present = np.array([v for v in values if v is not None], dtype=np.float64)
        _require(bool(np.isfinite(present).all() and (present >= 0).all()))
        return (values,)

    def value(self, value: Any, _bounds: Bounds, /) -> tuple[float | None]:
        if value is None:
            return (None,)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise Invalid("must be a finite number >= 0")
        return (float(value),)


@dataclass(frozen=True)
class Count:
    """An optional whole number that fits int4 (token counts)."""

    def column(self, values: Column, _bounds: Bounds, /) -> tuple[Column]:
        _require(_INTEGER.issuperset(map(type, values)))
        present = [v for v in values if v is not None]
        _require(not present or (min(present) >= 0 and max(present) < _INT4_MAX))
        return (values,)

    def value(self, value: Any, _bounds: Bounds, /) -> tuple[int | None]:
        if value is None:
            return (None,)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _INT4_MAX:
            raise Invalid("must be a whole number >= 0")
        return (value,)


@dataclass(frozen=True)
class Output:
    """The model's output: a number (booleans as 0/1) or a string, into one of two columns."""

    def column(self, values: Column, bounds: Bounds, /) -> tuple[Column, Column]:
        types = set(map(type, values))
        nothing: Column = [None] * len(values)
        if _NUMBER.issuperset(types):
            present = np.array([v for v in values if v is not None], dtype=np.float64)
            _require(bool(np.isfinite(present).all()))
            return values, nothing
        _require(_TEXT.issuperset(types))
        _require(_longest(values) <= bounds.max_length and all_storable(values))
        return nothing, values

    def value(self, value: Any, bounds: Bounds, /) -> tuple[float | None, str | None]:
        if value is None:
            return None, None
        if isinstance(value, bool):
            return (1.0 if value else 0.0), None
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise Invalid("must be finite")
            return float(value), None
        if isinstance(value, str):
            if len(value) > bounds.max_length:
                raise Invalid("string too long")
            _storable(value)
            return None, value
        raise Invalid("must be a number, string or boolean")


MAX_CLASSES = 100
"""Classes a ``probabilities`` object may name (estimation reads one column per class)."""
MAX_CLASS_LENGTH = 256


def _class_problem(name: Any, score: Any) -> str | None:
    if not isinstance(name, str) or not name or len(name) > MAX_CLASS_LENGTH:
        return f"class names must be non-empty strings of at most {MAX_CLASS_LENGTH} characters"
    bad = text_problem(name)
    if bad:
        return f"class name {name[:40]!r} {bad}"
    if (
        isinstance(score, bool)
        or not isinstance(score, int | float)
        or not (0.0 <= score <= 1.0)  # NaN fails this too
    ):
        return f"the score of class {name!r} must be a number in [0, 1]"
    return None


@dataclass(frozen=True)
class Probabilities:
    """A classifier's score per class, ``{"class": p}`` with p in [0, 1]; a class whose score
    is null is left out, and an object with none is missing."""

    def column(self, values: Column, _bounds: Bounds, /) -> tuple[Column]:
        _require({dict, _NONE}.issuperset(map(type, values)))
        for v in values:
            if v is not None:
                _require(0 < len(v) <= MAX_CLASSES)
                _require(not any(_class_problem(k, p) for k, p in v.items()))
        return (values,)

    def value(self, value: Any, _bounds: Bounds, /) -> tuple[dict[str, Any] | None]:
        if value is None:
            return (None,)
        if not isinstance(value, dict):
            raise Invalid('must be an object of scores per class, {"class": p}')
        present = {k: p for k, p in value.items() if p is not None}
        if len(present) > MAX_CLASSES:
            raise Invalid(f"names {len(present)} classes; at most {MAX_CLASSES} are accepted")
        for k, p in present.items():
            bad = _class_problem(k, p)
            if bad:
                raise Invalid(bad)
        return (present or None,)
