"""Typed arrays vs JSONB for features: ingest speed, disk, and the scans the jobs run.

    python -m benchmarks.storage_layout [--rows 1000000]

Same rows (15 numeric + 5 categorical features) written once into ``predictions`` (features as
``float8[]``/``text[]``) and once into a scratch table with one JSONB ``features`` column.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from benchmarks.common import CATEGORICAL, NUMERIC, feature_arrays, scratch_database
from monitor.storage.arrays import encode_float8_rows, encode_text_row
from monitor.storage.engine import make_engine
from monitor.storage.ingest import copy_predictions
from monitor.storage.partitions import Partitions
from monitor.storage.rows import PredictionRow

CHUNK = 50_000
HIST = (
    "SELECT width_bucket({expr}, -4, 4, 20) AS b, count(*), sum({expr}) FROM {table} "
    "WHERE model_id = 1 GROUP BY b"
)


def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def load_typed(
    conn: psycopg.Connection[Any], num: np.ndarray, cat: np.ndarray, start: datetime
) -> float:
    def run() -> None:
        for s in range(0, len(num), CHUNK):
            enc = encode_float8_rows(num[s : s + CHUNK])
            rows = [
                PredictionRow(
                    model_id=1,
                    model_version="1",
                    prediction_id=None,
                    ts=start + timedelta(milliseconds=s + i),
                    num=enc[i],
                    cat=encode_text_row(c),
                    prediction=0.5,
                    prediction_text=None,
                    latency_ms=10.0,
                    status="ok",
                    variant="production",
                    gpu_seconds=None,
                    tokens_in=None,
                    tokens_out=None,
                    extra=None,
                )
                for i, c in enumerate(cat[s : s + CHUNK].tolist())
            ]
            copy_predictions(conn, rows)
            conn.commit()

    return timed(run)


def load_jsonb(
    conn: psycopg.Connection[Any], num: np.ndarray, cat: np.ndarray, start: datetime
) -> float:
    conn.execute(
        "CREATE TABLE features_jsonb (model_id int NOT NULL, ts timestamptz NOT NULL, "
        "features jsonb NOT NULL)"
    )
    conn.execute("CREATE INDEX ON features_jsonb (model_id, ts)")
    conn.commit()

    def run() -> None:
        for s in range(0, len(num), CHUNK):
            with (
                conn.cursor() as cur,
                cur.copy("COPY features_jsonb FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(["int4", "timestamptz", "jsonb"])
                for i, (n, c) in enumerate(
                    zip(num[s : s + CHUNK].tolist(), cat[s : s + CHUNK].tolist(), strict=True)
                ):
                    features = dict(zip(NUMERIC, n, strict=True))
                    features.update(zip(CATEGORICAL, c, strict=True))
                    copy.write_row((1, start + timedelta(milliseconds=s + i), Jsonb(features)))
            conn.commit()

    return timed(run)


def pull(conn: psycopg.Connection[Any], sql: str) -> float:
    def run() -> None:
        with conn.cursor() as cur:
            cur.execute(sql)
            np.array([r[0] for r in cur.fetchall()], dtype=np.float64)

    return timed(run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    n = parser.parse_args().rows
    num, cat = feature_arrays(n)
    start = datetime.now(UTC) - timedelta(hours=1)
    with scratch_database() as url, psycopg.connect(url) as conn:
        conn.execute("INSERT INTO models (name) VALUES ('layout')")
        conn.commit()
        Partitions(make_engine(url)).ensure_ahead(start.date(), 1)
        t_typed = load_typed(conn, num, cat, start)
        t_jsonb = load_jsonb(conn, num, cat, start)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        size = {
            t: conn.execute(f"SELECT pg_total_relation_size('{t}')").fetchone()[0]  # type: ignore[index]
            for t in ("features_jsonb",)
        }
        typed_size = conn.execute(
            "SELECT sum(pg_total_relation_size(inhrelid))::float8 FROM pg_inherits "
            "WHERE inhparent = 'predictions'::regclass"
        ).fetchone()[0]  # type: ignore[index]
        h_typed = timed(lambda: conn.execute(HIST.format(expr="num[4]", table="predictions")))
        h_jsonb = timed(
            lambda: conn.execute(
                HIST.format(expr="(features->>'n3')::float8", table="features_jsonb")
            )
        )
        p_typed = pull(conn, "SELECT num[4] FROM predictions WHERE model_id = 1")
        p_jsonb = pull(conn, "SELECT (features->>'n3')::float8 FROM features_jsonb")
    print(f"{n:,} rows, {len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical features")
    print(f"{'':24}{'typed arrays':>14}{'JSONB':>14}{'JSONB/typed':>13}")
    for label, a, b in [
        ("ingest (rows/s)", n / t_typed, n / t_jsonb),
        ("disk (MiB)", typed_size / 2**20, size["features_jsonb"] / 2**20),
        ("SQL histogram (s)", h_typed, h_jsonb),
        ("one feature to numpy (s)", p_typed, p_jsonb),
    ]:
        print(f"{label:24}{a:>14,.1f}{b:>14,.1f}{b / a:>13.2f}")


if __name__ == "__main__":
    main()
