"""The rows a window query reads: one model's predictions with ``start <= ts < end``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Span:
    model_id: int
    start: datetime
    end: datetime

    def params(self, **more: object) -> dict[str, object]:
        return {"model_id": self.model_id, "start": self.start, "end": self.end, **more}
