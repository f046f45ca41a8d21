"""A model's feature schema: which features exist, their kind, and their array positions.

The schema is append-only: a feature keeps its position in ``num`` or ``cat`` for ever, so rows
written under an older schema stay readable (their arrays are just shorter).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from monitor.ingest.names import feature_name_problem

Kind = Literal["numeric", "categorical"]
NUMERIC: Kind = "numeric"
CATEGORICAL: Kind = "categorical"


@dataclass(frozen=True)
class Feature:
    name: str
    kind: Kind


@dataclass(frozen=True)
class FeatureSchema:
    features: tuple[Feature, ...] = ()
    num_index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    cat_index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        num = [f.name for f in self.features if f.kind == NUMERIC]
        cat = [f.name for f in self.features if f.kind == CATEGORICAL]
        object.__setattr__(self, "num_index", {n: i for i, n in enumerate(num)})
        object.__setattr__(self, "cat_index", {n: i for i, n in enumerate(cat)})

    @classmethod
    def from_json(cls, raw: Iterable[Mapping[str, Any]]) -> FeatureSchema:
        return cls(tuple(Feature(str(f["name"]), f["kind"]) for f in raw))

    def to_json(self) -> list[dict[str, str]]:
        return [{"name": f.name, "kind": f.kind} for f in self.features]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.features)

    @property
    def numeric_names(self) -> list[str]:
        return list(self.num_index)

    @property
    def categorical_names(self) -> list[str]:
        return list(self.cat_index)

    def __bool__(self) -> bool:
        return bool(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def conflicts_with(self, other: FeatureSchema) -> list[str]:
        """Names whose kind differs or that ``other`` drops: what an append-only schema refuses."""
        theirs = {f.name: f.kind for f in other.features}
        return [f.name for f in self.features if theirs.get(f.name) != f.kind]


def value_kind(value: object) -> Kind | None:
    """Kind of one JSON value as a feature; None for null/missing."""
    if value is None:
        return None
    if isinstance(value, bool | str):
        return CATEGORICAL
    if isinstance(value, int | float):
        return NUMERIC
    raise TypeError(type(value).__name__)


def infer_schema(rows: Iterable[Mapping[str, object]]) -> tuple[FeatureSchema, dict[str, str]]:
    """Infer kinds from sample feature maps; returns the schema and per-name problems.

    Each feature takes the kind most of its sample values have (numeric on a tie or when all
    are null). Values of the other kind, and values of no kind (objects, lists), are then
    reported record by record when the batch is checked against the inferred schema.
    """
    votes: dict[str, Counter[Kind]] = {}
    problems: dict[str, str] = {}
    for features in rows:
        for name, value in features.items():
            bad_name = feature_name_problem(name)
            if bad_name:
                problems[name] = bad_name
                continue
            tally = votes.setdefault(name, Counter())
            try:
                kind = value_kind(value)
            except TypeError:
                continue
            if kind is not None:
                tally[kind] += 1
    out = [
        Feature(name, CATEGORICAL if t[CATEGORICAL] > t[NUMERIC] else NUMERIC)
        for name, t in votes.items()
    ]
    return FeatureSchema(tuple(out)), problems
