"""Ingest orchestration: check a whole batch, then store it in one transaction, or nothing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from monitor.errors import MonitorError, NotFound, Problem, StorageError, ValidationFailed
from monitor.ingest import labels as label_records
from monitor.ingest.cardinality import Caps, CardinalityGuard
from monitor.ingest.prechecked import FeatureCells, rows_with_features
from monitor.ingest.predictions import Limits, first_per_id, group_by_model, typed_rows
from monitor.ingest.rules import Invalid, within_bounds
from monitor.ingest.schema import FeatureSchema
from monitor.ingest_metrics import IngestMetrics
from monitor.schemas import SloSettings
from monitor.storage.database import Database
from monitor.storage.ingest import store_predictions
from monitor.storage.labels import upsert_labels
from monitor.storage.models import ModelStore
from monitor.storage.partitions import Partitions
from monitor.storage.rows import PredictionRow


@dataclass(frozen=True)
class IngestResult:
    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored

    def as_body(self) -> dict[str, int]:
        return {"received": self.received, "stored": self.stored, "duplicates": self.duplicates}


@dataclass
class _Checked:
    model: str
    schema: FeatureSchema
    inferred: bool
    rows: list[PredictionRow]


class SchemaMoved(MonitorError):
    """Another writer stored a different inferred schema first; check the batch again."""


class StaleFeatures(MonitorError):
    """Features checked for a model that is no longer there (deleted, made again): the caller
    checks its records in full instead."""


_SchemaMoved = SchemaMoved


class IngestService:
    def __init__(
        self,
        engine: Engine,
        models: ModelStore,
        partitions: Partitions,
        limits: Limits,
        metrics: IngestMetrics,
    ) -> None:
        self.engine = engine
        self.db = Database(engine)
        self.models = models
        self.partitions = partitions
        self.limits = limits
        self.metrics = metrics
        self.guard = CardinalityGuard(
            engine,
            Caps(limits.max_models, limits.max_versions_per_model, limits.max_variants_per_model),
        )

    def predictions(self, records: Sequence[Any], *, kind: str = "predictions") -> IngestResult:
        """Check and store a batch all or nothing; ``kind`` labels monitor_ingest_rows_total
        with the source the rows came through."""
        for _attempt in range(3):
            checked = self._check(records)
            self.partitions.ensure({r.ts.astimezone(UTC).date() for c in checked for r in c.rows})
            try:
                return self._store(checked, len(records), kind)
            except _SchemaMoved:
                continue
        raise StorageError("feature schema kept changing under this batch; retry")

    def validate(self, records: Sequence[Any]) -> None:
        """Check ``records`` as ``predictions`` would (422 naming every bad one); store nothing."""
        self._check(records)

    def _check(self, records: Sequence[Any]) -> list[_Checked]:
        now = datetime.now(UTC)
        batches, problems = group_by_model(records, self.limits)
        new_models = [(n, b.indexes[0]) for n, b in batches.items() if self.models.get(n) is None]
        capped = self.guard.new_model_problems(new_models)
        checked: list[_Checked] = []
        for name, batch in batches.items():
            schema, inferred, schema_problems = self.models.schema_for(name, batch.features())
            if schema_problems:
                problems.extend(
                    Problem(p, index=batch.first_index_with(n), field=f"features.{n}")
                    for n, p in schema_problems.items()
                )
                continue
            record = None if inferred else self.models.get(name)
            reject = bool(record and record.options.unknown_features == "reject")
            model_id = record.id if record else 0  # filled in once the model row exists
            rows, bad = typed_rows(batch, model_id, schema, self.limits, now, reject_unknown=reject)
            problems.extend(bad)
            if not bad:
                existing = record or self.models.get(name)
                capped += self._label_caps(existing.id if existing else 0, batch.indexes, rows)
            checked.append(_Checked(name, schema, inferred, first_per_id(rows)))
        for p in capped:
            self.metrics.rejected(f"cardinality_{p.field}")
        if problems:
            self.metrics.rejected("invalid_record", len({p.index for p in problems}) or 1)
        problems += capped
        if problems:
            bad_records = len({p.index for p in problems if p.index is not None})
            raise ValidationFailed(
                f"{bad_records or 'the'} of {len(records)} records are invalid; nothing was stored",
                sorted(
                    problems, key=lambda p: (p.index if p.index is not None else -1, p.field or "")
                ),
            )
        return checked

    def _label_caps(
        self, model_id: int, indexes: list[int], rows: list[PredictionRow]
    ) -> list[Problem]:
        versions = [r.model_version for r in rows]
        variants = [r.variant for r in rows]
        return self.guard.label_problems(
            model_id, "version", versions, indexes
        ) + self.guard.label_problems(model_id, "variant", variants, indexes)

    def _store(self, checked: list[_Checked], received: int, kind: str) -> IngestResult:
        with self.db.begin() as conn:
            stored = self._store_in(conn, checked)
        return self._counted(stored, received, kind)

    def _store_in(
        self, conn: Connection, checked: list[_Checked]
    ) -> list[tuple[str, list[PredictionRow]]]:
        stored: list[tuple[str, list[PredictionRow]]] = []
        for item in checked:
            rows = item.rows
            if item.inferred:
                record = self.models.ensure_in(conn, item.model, item.schema)
                if record.schema != item.schema:
                    raise _SchemaMoved
                rows = [r._replace(model_id=record.id) for r in rows]
            if rows:
                self.guard.record(
                    conn,
                    rows[0].model_id,
                    {r.model_version for r in rows},
                    {r.variant for r in rows},
                )
            raw = conn.connection.driver_connection
            assert raw is not None
            stored.append(
                (item.model, store_predictions(raw, rows[0].model_id, rows) if rows else [])
            )
        return stored

    def _counted(
        self, stored: list[tuple[str, list[PredictionRow]]], received: int, kind: str
    ) -> IngestResult:
        total = 0
        for model, rows in stored:
            self.metrics.stored_predictions(model, rows, self._slo_latency_ms(model))
            total += len(rows)
        self.metrics.accepted(kind, total)
        return IngestResult(received=received, stored=total)

    @contextmanager
    def transaction(self, *, kind: str = "predictions") -> Iterator[IngestTransaction]:
        """One all-or-nothing transaction for a source that writes more than predictions
        (pending halves of a call, a consumer's offsets): its own statements and the checked
        predictions commit together or not at all. Counters move only after the commit.

        Raises ``SchemaMoved`` when another writer stored a different inferred schema first:
        the caller runs its transaction again."""
        tx = IngestTransaction(self, kind)
        with self.db.begin() as conn:
            tx.conn = conn
            yield tx
        tx.committed()

    def _slo_latency_ms(self, model: str) -> float:
        record = self.models.get(model)
        return (record.options.slo if record else SloSettings()).latency_ms

    def event_time(self, ts: datetime | None) -> datetime:
        """A deployment event's timestamp (missing: now), in the range prediction and label
        timestamps take; a naive one is UTC, as for predictions."""
        bounds = self.limits.bounds(datetime.now(UTC))
        if ts is None:
            return bounds.now
        try:
            return within_bounds(ts if ts.tzinfo else ts.replace(tzinfo=UTC), bounds)
        except Invalid as exc:
            raise ValidationFailed(
                f"timestamp {exc.problem}; nothing was stored",
                [Problem(exc.problem, field="timestamp")],
            ) from exc

    def labels(self, records: Sequence[Any]) -> IngestResult:
        now = datetime.now(UTC)
        by_model, problems = label_records.check(records, self.limits, now)
        if problems:
            self.metrics.rejected("invalid_label", len({p.index for p in problems}) or 1)
            raise ValidationFailed(
                f"{len({p.index for p in problems})} of {len(records)} labels are invalid; "
                "nothing was stored",
                problems,
            )
        unknown = [m for m in by_model if self.models.get(m) is None]
        if unknown:  # a label cannot create a model: a typo would start a model of its own
            names = ", ".join(repr(m) for m in unknown)
            what = f"model {names} is" if len(unknown) == 1 else f"models {names} are"
            raise NotFound(
                f"{what} not known; send predictions or create it with PUT /v1/models/{{model}} "
                "first; nothing was stored"
            )
        stored = 0
        with self.db.begin() as conn:
            for model, rows in by_model.items():
                record = self.models.require(model)
                stored += upsert_labels(conn, record.id, rows)
        self.metrics.accepted("labels", stored)
        return IngestResult(received=len(records), stored=stored)


class IngestTransaction:
    """Predictions stored inside a caller's transaction (``IngestService.transaction``)."""

    def __init__(self, service: IngestService, kind: str = "predictions") -> None:
        self.service = service
        self.kind = kind
        self.conn: Connection
        self._stored: list[tuple[list[tuple[str, list[PredictionRow]]], int]] = []
        self.result = IngestResult(received=0, stored=0)

    def predictions(self, records: Sequence[Any]) -> IngestResult:
        """Check ``records`` (422 naming every bad one) and store them in this transaction."""
        if not records:
            return IngestResult(received=0, stored=0)
        return self._store(self.service._check(records), len(records))

    def _store(self, checked: list[_Checked], received: int) -> IngestResult:
        svc = self.service
        svc.partitions.ensure({r.ts.astimezone(UTC).date() for c in checked for r in c.rows})
        stored = svc._store_in(self.conn, checked)
        self._stored.append((stored, received))
        return IngestResult(received=received, stored=sum(len(rows) for _, rows in stored))

    def check_features(self, records: Sequence[Any]) -> FeatureCells | None:
        """Check ``records`` as ``predictions`` would (422 naming every bad one) and keep their
        checked features, to be stored later with the fields of another message
        (``predictions_with``). A schema inferred from these records is stored now, so the
        features stay valid (and the model's next batches are checked against it). None when
        the records are of several models."""
        svc = self.service
        checked = svc._check(records)
        if len(checked) != 1 or len(checked[0].rows) != len(records):
            return None
        item = checked[0]
        rows = item.rows
        if item.inferred:
            record = svc.models.ensure_in(self.conn, item.model, item.schema)
            if record.schema != item.schema:
                raise _SchemaMoved
            rows = [r._replace(model_id=record.id) for r in rows]
        return FeatureCells.of(item.model, rows)

    def predictions_with(self, cells: FeatureCells, records: Sequence[Any]) -> IngestResult:
        """Store ``records`` with the features ``check_features`` checked earlier, checking
        only their other fields (422 naming every bad one). Raises ``StaleFeatures`` when the
        model is not the one the features were checked for."""
        svc = self.service
        record = svc.models.get(cells.model)
        # a model made by this very transaction (its first request) is not in the cache yet
        model_id = record.id if record else svc.models.id_in(self.conn, cells.model)
        if model_id != cells.model_id:
            raise StaleFeatures(f"model {cells.model!r} changed since its features were checked")
        rows, problems = rows_with_features(cells, records, svc.limits, datetime.now(UTC))
        if problems:
            svc.metrics.rejected("invalid_record", len({p.index for p in problems}) or 1)
        else:
            problems = svc._label_caps(cells.model_id, list(range(len(rows))), rows)
            for p in problems:
                svc.metrics.rejected(f"cardinality_{p.field}")
        if problems:
            raise ValidationFailed(
                f"{len({p.index for p in problems})} of {len(records)} records are invalid; "
                "nothing was stored",
                problems,
            )
        checked = _Checked(cells.model, FeatureSchema(), False, first_per_id(rows))
        return self._store([checked], len(records))

    def committed(self) -> None:
        received = stored = 0
        for batch, n in self._stored:
            result = self.service._counted(batch, n, self.kind)
            received += result.received
            stored += result.stored
        self.result = IngestResult(received=received, stored=stored)
