"""Which rows a query reads, as typed values: a ``Span`` of time, a ``Scope`` of versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Span:
    """One model's predictions with ``start <= ts < end``."""

    model_id: int
    start: datetime
    end: datetime

    def params(self, **more: object) -> dict[str, object]:
        return {"model_id": self.model_id, "start": self.start, "end": self.end, **more}


@dataclass(frozen=True)
class Scope:
    """The rows a profile covers: one model, and its versions (one version's own reference, or
    the model-wide reference for every version without one)."""

    model_id: int
    version: str | None  # None: every version not in ``excluded``
    excluded: tuple[str, ...] = ()

    def where(self) -> str:
        """The scope as a WHERE clause over ``predictions p`` (psycopg parameters)."""
        clause = "p.model_id = %(model_id)s"
        if self.version is not None:
            return clause + " AND p.model_version = %(version)s"
        if self.excluded:
            return clause + " AND p.model_version <> ALL(%(excluded)s)"
        return clause

    def covers(self, version: str) -> bool:
        """Whether ``version``'s rows are in the scope (as ``where`` selects them)."""
        if self.version is not None:
            return version == self.version
        return version not in self.excluded

    def params(self, **more: Any) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "version": self.version,
            "excluded": list(self.excluded),
            **more,
        }
