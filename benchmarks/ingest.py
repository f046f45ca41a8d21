"""Ingest throughput: raw binary COPY (the limit) vs the HTTP API vs the SDK, on one schema.

    python benchmarks/ingest.py            # 1M rows, 15 numeric + 5 categorical features
    python benchmarks/ingest.py --rows 200000

Prints rows/s of (a) binary COPY from Python straight into ``predictions``, (b) the HTTP API
with 1,000-row JSON batches from 2 concurrent clients, (c) the SDK; the ratios (b)/(a) and
(c)/(a); p50/p99 batch latency of (b); the service's peak RSS; and the cost of one
``MonitorClient.log()`` call.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psycopg

from benchmarks.common import CATEGORICAL, NUMERIC, RssSampler, feature_arrays, scratch_database
from monitor.client import MonitorClient
from monitor.storage.arrays import encode_float8_rows, encode_text_row
from monitor.storage.engine import make_engine
from monitor.storage.ingest import copy_predictions
from monitor.storage.partitions import Partitions
from monitor.storage.rows import PREDICTION_COLUMNS, PREDICTION_TYPES, PredictionRow
from tests.support.appserver import free_port

BATCH = 1_000


def records(num: np.ndarray, cat: np.ndarray, model: str, start: datetime) -> list[dict[str, Any]]:
    out = []
    for i in range(len(num)):
        features: dict[str, Any] = dict(zip(NUMERIC, num[i].tolist(), strict=True))
        features.update(zip(CATEGORICAL, cat[i].tolist(), strict=True))
        out.append(
            {
                "prediction_id": f"{model}-{i}",
                "model": model,
                "model_version": "1",
                "timestamp": (start + timedelta(milliseconds=i)).isoformat(),
                "features": features,
                "prediction": 0.5,
                "latency_ms": 12.0,
            }
        )
    return out


_RAW_COPY = f"COPY predictions ({', '.join(PREDICTION_COLUMNS)}) FROM STDIN (FORMAT BINARY)"


def raw_copy(
    url: str, num: np.ndarray, cat: np.ndarray, start: datetime, *, pre_encoded: bool
) -> float:
    """(a): rows built beforehand, COPY'd straight into the partitioned table, 10k rows per
    COPY and commit. ``pre_encoded``: arrays already in PostgreSQL's binary form (the absolute
    limit); otherwise Python lists through psycopg's own binary dumpers (plain psycopg)."""
    name = "raw_encoded" if pre_encoded else "raw_lists"
    with psycopg.connect(url) as conn:
        model_id = conn.execute(
            "INSERT INTO models (name) VALUES (%s) RETURNING id", (name,)
        ).fetchone()[0]  # type: ignore[index]
        conn.commit()
        Partitions(make_engine(url)).ensure_ahead(start.date(), 2)
        nums: Any = encode_float8_rows(num) if pre_encoded else num.tolist()
        cats: Any = [encode_text_row(c) if pre_encoded else c for c in cat.tolist()]
        rows = [
            PredictionRow(
                model_id=model_id,
                model_version="1",
                prediction_id=f"{name}-{i}",
                ts=start + timedelta(milliseconds=i),
                num=nums[i],
                cat=cats[i],
                prediction=0.5,
                prediction_text=None,
                latency_ms=12.0,
                status="ok",
                variant="production",
                gpu_seconds=None,
                tokens_in=None,
                tokens_out=None,
                extra=None,
            )
            for i in range(len(num))
        ]
        t0 = time.perf_counter()
        for s in range(0, len(rows), 10_000):
            if pre_encoded:
                copy_predictions(conn, rows[s : s + 10_000])
            else:
                with conn.cursor() as cur, cur.copy(_RAW_COPY) as copy:
                    copy.set_types(list(PREDICTION_TYPES))
                    for row in rows[s : s + 10_000]:
                        copy.write_row(row)
            conn.commit()
        return time.perf_counter() - t0


def start_service(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "MONITOR_DATABASE_URL": url, "MONITOR_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "serve", "--no-scheduler"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "service did not start")


def http_clients(base: str, bodies: list[bytes], workers: int = 2) -> tuple[float, list[float]]:
    """(b): pre-encoded 1,000-row batches POSTed by ``workers`` concurrent clients."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(chunk: list[bytes]) -> None:
        with httpx.Client(
            base_url=base, timeout=60, headers={"Content-Type": "application/json"}
        ) as http:
            for body in chunk:
                t = time.perf_counter()
                r = http.post("/v1/predictions", content=body)
                r.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=worker, args=(bodies[i::workers],)) for i in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies


def sdk(base: str, recs: list[dict[str, Any]]) -> float:
    """(c): one MonitorClient logging every record, timed until all are acknowledged."""
    client = MonitorClient(base, batch_size=BATCH, flush_interval=0.05, max_queue=len(recs) + 1)
    t0 = time.perf_counter()
    for r in recs:
        client.log(
            r["model"],
            r["features"],
            r["prediction"],
            latency_ms=r["latency_ms"],
            model_version="1",
        )
    if not client.flush(timeout=3600):
        raise RuntimeError("the SDK did not deliver everything")
    elapsed = time.perf_counter() - t0
    client.close()
    return elapsed


def log_call_cost(n: int = 200_000) -> float:
    client = MonitorClient(f"http://127.0.0.1:{free_port()}", flush_interval=3600, max_queue=n + 1)
    features = {"amount": 12.5, "country": "DE"}
    t0 = time.perf_counter()
    for _ in range(n):
        client.log("fraud", features, 0.87, latency_ms=23.4)
    per_call = (time.perf_counter() - t0) / n
    client.close(timeout=0.01)
    return per_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.rows
    num, cat = feature_arrays(n)
    start = datetime.now(UTC) - timedelta(hours=2)
    print(
        f"ingest benchmark: {n:,} rows, {len(NUMERIC)} numeric + {len(CATEGORICAL)} "
        f"categorical features, batches of {BATCH}"
    )
    with scratch_database() as url:
        t_lists = raw_copy(url, num, cat, start, pre_encoded=False)
        t_raw = raw_copy(url, num, cat, start, pre_encoded=True)
        recs_b = records(num, cat, "http", start)
        bodies = [orjson.dumps({"predictions": recs_b[s : s + BATCH]}) for s in range(0, n, BATCH)]
        del recs_b
        recs_c = records(num, cat, "sdk", start)
        proc, base = start_service(url)
        try:
            with RssSampler(proc.pid) as rss:
                t_http, lat = http_clients(base, bodies)
                t_sdk = sdk(base, recs_c)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM predictions").fetchone()[0]  # type: ignore[index]
    a, a0, b, c = n / t_raw, n / t_lists, n / t_http, n / t_sdk
    p50, p99 = np.percentile(np.array(lat) * 1000, [50, 99])
    print(f"(a) raw binary COPY, arrays pre-encoded  {a:>9,.0f} rows/s  ({t_raw:.1f} s)")
    print(f"(a0) raw binary COPY, psycopg list dumpers {a0:>7,.0f} rows/s  ({t_lists:.1f} s)")
    print(
        f"(b) HTTP API, 2 clients  {b:>10,.0f} rows/s  ({t_http:.1f} s)  "
        f"b/a = {b / a:.2f}  b/a0 = {b / a0:.2f}"
    )
    print(
        f"(c) SDK                  {c:>10,.0f} rows/s  ({t_sdk:.1f} s)  "
        f"c/a = {c / a:.2f}  c/a0 = {c / a0:.2f}"
    )
    print(f"HTTP batch latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"service peak RSS {rss.peak / 2**20:.0f} MiB")
    print(f"rows stored {stored:,} (expected {4 * n:,})")
    print(f"MonitorClient.log(): {log_call_cost() * 1e6:.2f} µs per call")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
