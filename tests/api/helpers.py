"""Small helpers for API tests: records, and counting what the database holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text


def record(i: int = 0, model: str = "fraud", **over: Any) -> dict[str, Any]:
    ts = datetime.now(UTC) - timedelta(minutes=5)
    rec: dict[str, Any] = {
        "prediction_id": f"p-{i}",
        "model": model,
        "model_version": "3.2.0",
        "timestamp": ts.isoformat(),
        "features": {"amount": 10.0 + i, "country": "DE" if i % 2 else "FR"},
        "prediction": 0.5,
        "latency_ms": 20.0 + i,
    }
    rec.update(over)
    return rec


def count(engine: Engine, table: str, where: str = "true") -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one())


def stored_nothing(engine: Engine) -> bool:
    return all(
        count(engine, t) == 0 for t in ("predictions", "prediction_keys", "models", "labels")
    )
