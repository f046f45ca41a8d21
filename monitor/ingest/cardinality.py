"""The cardinality guard: payloads cannot create unbounded models, versions or variants.

Every model, version and variant becomes Prometheus series (``ml_predictions_total``, every
windowed figure). Ingest, for every source, refuses a record that would create a model beyond
``MONITOR_MAX_MODELS`` or a version / variant beyond the per-model caps, as a 422 that names the
record and the cap; nothing of the batch is stored and the refusal is counted
(``monitor_ingest_rejected_total{reason="cardinality_*"}``).

Known values are cached per model, so a regular batch costs two set differences; only a batch
with a value not seen before reads the database again. Concurrent writers on several replicas
can each admit a new value before seeing the other's, so a cap can be exceeded by at most the
number of writers racing on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from monitor.errors import Problem
from monitor.storage import cardinality as store
from monitor.storage.database import Database

VERSION, VARIANT = "version", "variant"
_FIELDS = {VERSION: "model_version", VARIANT: "variant"}
_SETTINGS = {VERSION: "MONITOR_MAX_VERSIONS_PER_MODEL", VARIANT: "MONITOR_MAX_VARIANTS_PER_MODEL"}


@dataclass(frozen=True)
class Caps:
    models: int = 1_000
    versions: int = 100
    variants: int = 20

    def of(self, kind: str) -> int:
        return self.versions if kind == VERSION else self.variants


class CardinalityGuard:
    def __init__(self, engine: Engine, caps: Caps, *, ttl_seconds: float = 30.0) -> None:
        self.engine = engine
        self.db = Database(engine)
        self.caps = caps
        self.ttl = ttl_seconds
        self._known: dict[int, tuple[float, dict[str, set[str]]]] = {}
        self._mutex = threading.Lock()

    def new_model_problems(self, new: Sequence[tuple[str, int]]) -> list[Problem]:
        """``new``: (model, index of its first record) for models that do not exist yet."""
        if not new:
            return []
        with self.db.connect() as conn:
            existing = store.count_models(conn)
        room = self.caps.models - existing
        return [
            Problem(
                f"would be model number {existing + i + 1}; MONITOR_MAX_MODELS is "
                f"{self.caps.models} (create it with PUT /v1/models/{{model}} or raise the cap)",
                index=index,
                field="model",
            )
            for i, (_, index) in enumerate(new)
            if i >= room
        ]

    def label_problems(
        self, model_id: int, kind: str, values: Sequence[str], indexes: Sequence[int]
    ) -> list[Problem]:
        """Problems for the records whose ``kind`` value would go over the model's cap."""
        known = self._labels(model_id, fresh=False)[kind]
        new = _first_seen(values, indexes, known)
        if not new:
            return []
        cap = self.caps.of(kind)
        if len(known) + len(new) > cap and model_id:
            known = self._labels(model_id, fresh=True)[kind]
            new = _first_seen(values, indexes, known)
        room = cap - len(known)
        admitted = set(list(new)[: max(room, 0)])
        return [
            Problem(
                f"{value!r} would be {kind} number {len(known) + pos + 1} of this model; "
                f"{_SETTINGS[kind]} is {cap}",
                index=index,
                field=_FIELDS[kind],
            )
            for pos, (value, index) in enumerate(new.items())
            if value not in admitted
        ]

    def record(
        self, conn: Connection, model_id: int, versions: set[str], variants: set[str]
    ) -> None:
        """Inside the storing transaction: remember the batch's versions and variants that the
        cache does not know (usually none, so usually no statement). Should the transaction
        roll back, the cache holds a value the table lacks until its TTL ends and it is read
        again; the next batch with that value then writes it."""
        with self._mutex:
            hit = self._known.get(model_id)
        known = hit[1] if hit is not None and hit[0] > time.monotonic() else None
        new = [(VERSION, v) for v in versions if known is None or v not in known[VERSION]]
        new += [(VARIANT, v) for v in variants if known is None or v not in known[VARIANT]]
        if not new:
            return
        store.add_labels(conn, model_id, new)
        if known is not None:
            with self._mutex:
                for kind, value in new:
                    known[kind].add(value)

    def _labels(self, model_id: int, *, fresh: bool) -> dict[str, set[str]]:
        if not model_id:  # a model this batch creates: nothing stored yet
            return {VERSION: set(), VARIANT: set()}
        with self._mutex:
            hit = self._known.get(model_id)
        if hit is not None and not fresh and hit[0] > time.monotonic():
            return hit[1]
        with self.db.connect() as conn:
            known = store.known_labels(conn, model_id)
        with self._mutex:
            self._known[model_id] = (time.monotonic() + self.ttl, known)
        return known


def _first_seen(values: Sequence[str], indexes: Sequence[int], known: set[str]) -> dict[str, int]:
    """Values not in ``known``, in order of first appearance, with that record's index."""
    if known.issuperset(values):
        return {}
    out: dict[str, int] = {}
    for value, index in zip(values, indexes, strict=True):
        if value not in known and value not in out:
            out[value] = index
    return out
