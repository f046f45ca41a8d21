"""The model registry: names, feature schemas and configuration, cached briefly in-process."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping

from monitor.errors import ConfigError, Conflict, NotFound
from monitor.ingest.schema import FeatureSchema, infer_schema
from monitor.schemas import ModelConfig, segment_problems
from monitor.storage.engine import translate_errors
from monitor.storage.tables import models


@dataclass(frozen=True)
class ModelRecord:
    id: int
    name: str
    task: str
    schema: FeatureSchema
    prediction_kind: str | None
    config: Mapping[str, Any]  # as stored (what reads show, secrets masked)
    created_at: datetime
    updated_at: datetime
    # ``config`` parsed once, when the row was read: ``ModelConfig``, or why it is not one
    parsed: ModelConfig | str = field(repr=False, compare=False)

    @property
    def options(self) -> ModelConfig:
        """The model's configuration, typed, defaults filled in. Raises ``ConfigError`` if the
        stored configuration is not valid (only that model's jobs fail, counted as failures)."""
        if isinstance(self.parsed, str):
            raise ConfigError(self.parsed)
        return self.parsed

    @classmethod
    def from_row(cls, row: RowMapping) -> ModelRecord:
        return cls(
            id=row["id"],
            name=row["name"],
            task=row["task"],
            schema=FeatureSchema.from_json(row["features"]),
            prediction_kind=row["prediction_kind"],
            config=row["config"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            parsed=parse_config(row["name"], row["task"], row["prediction_kind"], row["config"]),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "features": self.schema.to_json(),
            "prediction_kind": self.prediction_kind,
            "config": dict(self.config),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class ModelStore:
    """Reads and writes ``models``; the ingest hot path hits the cache, not the database."""

    def __init__(self, engine: Engine, *, ttl_seconds: float = 30.0) -> None:
        self.engine = engine
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, ModelRecord]] = {}
        self._mutex = threading.Lock()

    def _remember(self, record: ModelRecord) -> ModelRecord:
        with self._mutex:
            self._cache[record.name] = (time.monotonic() + self.ttl, record)
        return record

    def invalidate(self, name: str) -> None:
        with self._mutex:
            self._cache.pop(name, None)

    def get(self, name: str) -> ModelRecord | None:
        with self._mutex:
            hit = self._cache.get(name)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        with translate_errors(), self.engine.connect() as conn:
            row = conn.execute(select(models).where(models.c.name == name)).mappings().first()
        return self._remember(ModelRecord.from_row(row)) if row else None

    def require(self, name: str) -> ModelRecord:
        record = self.get(name)
        if record is None:
            raise NotFound(f"model {name!r} is not known")
        return record

    def list(self) -> list[ModelRecord]:
        with translate_errors(), self.engine.connect() as conn:
            rows = conn.execute(select(models).order_by(models.c.name)).mappings().all()
        return [ModelRecord.from_row(r) for r in rows]

    def ensure_in(
        self, conn: Connection, name: str, schema: FeatureSchema | None = None
    ) -> ModelRecord:
        """Inside the caller's transaction: the model row, created if missing and given ``schema``
        if it had none. The returned schema may differ from ``schema`` when another writer got
        there first."""
        conn.execute(_insert_ignore(name))
        if schema:
            conn.execute(
                update(models)
                .where(models.c.name == name, models.c.features == [])
                .values(features=schema.to_json(), updated_at=_now())
            )
        row = conn.execute(select(models).where(models.c.name == name)).mappings().one()
        self.invalidate(name)
        return ModelRecord.from_row(row)

    def id_in(self, conn: Connection, name: str) -> int | None:
        """Inside the caller's transaction: the model's id, or None."""
        found = conn.execute(select(models.c.id).where(models.c.name == name)).scalar()
        return int(found) if found is not None else None

    def ensure(self, name: str) -> ModelRecord:
        """The model row, created (with no schema) if missing, in a transaction of its own."""
        with translate_errors(), self.engine.begin() as conn:
            return self.ensure_in(conn, name)

    def schema_for(
        self, name: str, sample: Sequence[Mapping[str, object]]
    ) -> tuple[FeatureSchema, bool, dict[str, str]]:
        """The schema to check a batch against: the stored one, or one inferred from ``sample``
        (not yet stored). Returns (schema, inferred, problems)."""
        record = self.get(name)
        if record is not None and record.schema:
            return record.schema, False, {}
        schema, problems = infer_schema(sample)
        return schema, True, problems

    def put(
        self,
        name: str,
        *,
        task: str,
        schema: FeatureSchema | None,
        prediction_kind: str | None,
        config: Mapping[str, Any],
    ) -> tuple[ModelRecord, bool]:
        """Create or update a model. A schema only grows: no kind changes, nothing is dropped."""
        existing = self.get(name)
        self.invalidate(name)
        values: dict[str, Any] = {"task": task, "config": dict(config), "updated_at": _now()}
        if prediction_kind is not None:
            values["prediction_kind"] = prediction_kind
        if existing is not None and schema is not None:
            conflicts = existing.schema.conflicts_with(schema)
            if conflicts:
                raise Conflict(
                    "the feature schema is append-only; these features would change kind or "
                    f"disappear: {', '.join(conflicts)}"
                )
        if schema is not None:
            values["features"] = schema.to_json()
        with translate_errors(), self.engine.begin() as conn:
            if existing is None:
                conn.execute(_insert_ignore(name))
            conn.execute(update(models).where(models.c.name == name).values(**values))
        self.invalidate(name)
        return self.require(name), existing is None

    def apply(self, name: str, config: ModelConfig) -> tuple[ModelRecord, bool]:
        """Create or update a model from its validated configuration (API body, models file).

        Segments must be categorical features of the schema the model will have: a 409 if not
        (whether they are depends on the stored schema, as a schema change's conflict does).
        """
        if config.segments:
            existing = self.get(name)
            schema = config.feature_schema() or (existing.schema if existing else FeatureSchema(()))
            problems = segment_problems(config.segments, schema)
            if problems:
                raise Conflict(
                    "segments must name categorical features of the model's schema: "
                    + "; ".join(problems)
                )
        return self.put(
            name,
            task=config.task,
            schema=config.feature_schema(),
            prediction_kind=config.prediction_kind,
            config=config.stored_config(),
        )


def parse_config(
    name: str, task: str, prediction_kind: str | None, config: Mapping[str, Any]
) -> ModelConfig | str:
    """A stored configuration as ``ModelConfig``, or the problem with it: the one place a
    stored model configuration is validated and its error put in the service's terms."""
    try:
        return ModelConfig.model_validate(
            {**config, "task": task, "prediction_kind": prediction_kind}
        )
    except ValidationError as exc:
        return f"model {name!r}: the stored configuration is invalid: {exc}"


def _insert_ignore(name: str) -> Insert:
    return pg_insert(models).values(name=name).on_conflict_do_nothing(index_elements=["name"])


def _now() -> datetime:
    return datetime.now(UTC)
