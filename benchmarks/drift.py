"""Drift job vs Evidently's data-drift report, then the incremental case. Prints figures.

    .venv/bin/python benchmarks/drift.py [--quick]

One run, one synthetic data set (15 numeric + 5 categorical features, drift injected in 7):

1. the drift job over a 1M-row window of a table in PostgreSQL against a 1M-row reference set,
   from cold (reference profile and rollups built in that run), in a fresh process;
2. Evidently 0.7 ``Report([DataDriftPreset()])`` on the same two DataFrames, in a fresh process;
   wall time and peak RSS of each, the speed-up, and whether the 20 verdicts agree;
3. the incremental case: the table holds 10M rows over 7 days; after the 24h and 7d windows
   have been computed once, 100k rows arrive, and the 24h and 7d windows are computed again.

``MONITOR_BENCH_DATABASE_URL`` (an admin URL; default postgresql://postgres@127.0.0.1:5432/postgres)
is where a scratch database is created and dropped. ``--quick`` divides every size by 10.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

ADMIN_URL = os.environ.get(
    "MONITOR_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
NUMERIC = [f"n{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]
DRIFTED = {"n0", "n1", "n2", "n3", "n4", "c0", "c1"}
CATEGORIES = np.array([f"k{i}" for i in range(8)])  # same byte length: fixed-width COPY rows
SEED = 20261123
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Sizes:
    reference: int
    window: int  # rows in the last 24h
    table: int  # rows in the table (the last 7 days)
    arrivals: int  # rows added for the incremental case

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        scale = 10 if quick else 1
        return cls(1_000_000 // scale, 1_000_000 // scale, 10_000_000 // scale, 100_000 // scale)


# --- data -----------------------------------------------------------------------------------


def features(rows: int, *, drifted: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(numeric matrix, categorical matrix); drift moves n0-n4, c0 and c1 when ``drifted``."""
    rng = np.random.default_rng(seed)
    num = np.empty((rows, len(NUMERIC)))
    for j in range(len(NUMERIC)):
        num[:, j] = rng.normal(10.0 * j, 1.0 + j, rows)
    if drifted:
        num[:, 0] += 0.4  # location, 0.4 std
        num[:, 1] = 10.0 + (num[:, 1] - 10.0) * 1.5  # scale
        num[:, 2] = rng.gamma(4.0, 1.0, rows) * 3.0 + 12.0  # shape and location
        num[:, 3] += rng.choice([0.0, 2.0], size=rows)  # bimodal
        num[:, 4] = np.round(num[:, 4] * 2) / 2 + 0.6
    weights = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03])
    cat = np.empty((rows, len(CATEGORICAL)), dtype="<U2")
    for j in range(len(CATEGORICAL)):
        p = weights[::-1] if drifted and j < 2 else weights
        cat[:, j] = CATEGORIES[rng.choice(len(CATEGORIES), size=rows, p=p)]
    return num, cat


def frames(sizes: Sizes) -> tuple[Any, Any]:
    """The reference and current DataFrames Evidently gets (and the database holds)."""
    import pandas as pd

    out = []
    for rows, drifted, seed in ((sizes.reference, False, SEED), (sizes.window, True, SEED + 1)):
        num, cat = features(rows, drifted=drifted, seed=seed)
        frame = pd.DataFrame(num, columns=NUMERIC)
        for j, name in enumerate(CATEGORICAL):
            frame[name] = cat[:, j].astype(object)
        out.append(frame)
    return out[0], out[1]


# --- binary COPY, fixed-width rows built by numpy --------------------------------------------


def _array_field(values: np.ndarray, oid: int, width: int) -> np.ndarray:
    """One binary array field per row: length, header, (length, value) per element."""
    rows, k = values.shape
    element = values.dtype.newbyteorder(">") if values.dtype.kind == "f" else values.dtype
    dtype = np.dtype(
        [
            ("len", ">i4"),
            ("head", ">i4", (5,)),
            ("cells", [("l", ">i4"), ("v", element)], (k,)),
        ]
    )
    out = np.empty(rows, dtype=dtype)
    out["len"] = dtype.itemsize - 4
    out["head"] = (1, 0, oid, k, 1)
    out["cells"]["l"] = width
    out["cells"]["v"] = values
    return out


def _scalar_field(values: np.ndarray, fmt: str) -> np.ndarray:
    dtype = np.dtype([("len", ">i4"), ("v", fmt)])
    out = np.empty(values.shape[0], dtype=dtype)
    out["len"] = dtype.itemsize - 4
    out["v"] = values
    return out


def _rows(*fields: np.ndarray) -> bytes:
    count = np.full(fields[0].shape[0], len(fields), dtype=">i2")
    parts = [count, *fields]
    dtype = np.dtype([(f"f{i}", p.dtype) for i, p in enumerate(parts)])
    table = np.empty(fields[0].shape[0], dtype=dtype)
    for i, p in enumerate(parts):
        table[f"f{i}"] = p
    return table.tobytes()


def _copy(conn: psycopg.Connection[Any], sql: str, payload: bytes) -> None:
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    with conn.cursor() as cur, cur.copy(sql) as copy:
        copy.write(header + payload + struct.pack(">h", -1))


def _cat_bytes(cat: np.ndarray) -> np.ndarray:
    return np.frombuffer(cat.astype("S2").tobytes(), dtype="S2").reshape(cat.shape)


def copy_reference(conn: psycopg.Connection[Any], reference_id: int, sizes: Sizes) -> None:
    num, cat = features(sizes.reference, drifted=False, seed=SEED)
    for lo in range(0, sizes.reference, 200_000):
        hi = min(lo + 200_000, sizes.reference)
        payload = _rows(
            _scalar_field(np.full(hi - lo, reference_id), ">i4"),
            _array_field(num[lo:hi], 701, 8),
            _array_field(_cat_bytes(cat[lo:hi]), 25, 2),
        )
        _copy(
            conn, "COPY reference_rows (reference_id, num, cat) FROM STDIN (FORMAT BINARY)", payload
        )


def copy_predictions(
    conn: psycopg.Connection[Any], model_id: int, ts: np.ndarray, num: np.ndarray, cat: np.ndarray
) -> None:
    """``ts`` as microseconds since 2000-01-01 UTC (PostgreSQL's own epoch)."""
    for lo in range(0, ts.size, 200_000):
        hi = min(lo + 200_000, ts.size)
        version = np.zeros(hi - lo, dtype=[("len", ">i4")])  # '' (length 0)
        payload = _rows(
            _scalar_field(np.full(hi - lo, model_id), ">i4"),
            version,
            _scalar_field(ts[lo:hi], ">i8"),
            _array_field(num[lo:hi], 701, 8),
            _array_field(_cat_bytes(cat[lo:hi]), 25, 2),
        )
        _copy(
            conn,
            "COPY predictions (model_id, model_version, ts, num, cat) FROM STDIN (FORMAT BINARY)",
            payload,
        )
        conn.commit()


def _micros(ts: datetime) -> int:
    return (ts - _PG_EPOCH) // timedelta(microseconds=1)


def spread_ts(rows: int, start: datetime, end: datetime, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.integers(_micros(start), _micros(end), size=rows))


# --- database --------------------------------------------------------------------------------


@contextmanager
def scratch_database() -> Iterator[str]:
    from monitor.storage.databases import scratch_database as scratch
    from monitor.storage.engine import libpq_url

    with scratch(libpq_url(ADMIN_URL), "mm_bench_drift") as url:
        yield url


def _services(url: str) -> Any:
    from prometheus_client import CollectorRegistry

    from monitor.config import Settings
    from monitor.services import build_services

    settings = Settings(database_url=url, api_tokens=[])
    return build_services(settings, url, registry=CollectorRegistry())


def load(url: str, sizes: Sizes, now: datetime) -> None:
    from monitor.ingest.schema import CATEGORICAL as CAT
    from monitor.ingest.schema import NUMERIC as NUM
    from monitor.ingest.schema import Feature, FeatureSchema
    from monitor.storage import migrate, references

    services = _services(url)
    migrate.upgrade(services.engine)
    schema = FeatureSchema(
        tuple(Feature(n, NUM) for n in NUMERIC) + tuple(Feature(n, CAT) for n in CATEGORICAL)
    )
    record, _ = services.models.put(
        "bench", task="classification", schema=schema, prediction_kind=None, config={}
    )
    services.partitions.ensure({(now - timedelta(days=d)).date() for d in range(-1, 9)})
    with services.engine.begin() as conn:
        ref_id = references.create_set(conn, record.id, "", "upload")
        copy_reference(conn.connection.driver_connection, ref_id, sizes)
        references.activate(conn, ref_id, record.id, "", sizes.reference)
    with psycopg.connect(url) as conn:
        older = sizes.table - sizes.window
        num, cat = features(older, drifted=False, seed=SEED + 2)
        ts = spread_ts(older, now - timedelta(days=7), now - timedelta(hours=24), SEED + 3)
        copy_predictions(conn, record.id, ts, num, cat)
        del num, cat
        num, cat = features(sizes.window, drifted=True, seed=SEED + 1)
        ts = spread_ts(sizes.window, now - timedelta(hours=24), now, SEED + 4)
        copy_predictions(conn, record.id, ts, num, cat)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE predictions")
        conn.execute("VACUUM ANALYZE reference_rows")
    services.engine.dispose()


def arrive(url: str, rows: int, now: datetime, seed: int) -> None:
    """New rows of the last hour, received now."""
    with psycopg.connect(url) as conn:
        model_id = conn.execute("SELECT id FROM models WHERE name = 'bench'").fetchone()[0]  # type: ignore[index]
        num, cat = features(rows, drifted=True, seed=seed)
        copy_predictions(
            conn, model_id, spread_ts(rows, now - timedelta(hours=1), now, seed), num, cat
        )


# --- children: each measured in a fresh process ------------------------------------------------


def _peak_rss() -> int:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries that across exec, so a child
    would report the parent's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_job(url: str, steps: list[str]) -> dict[str, Any]:
    """Run ``steps`` in order: "profile" (``ensure_profiles``) or a window name (the job)."""
    from monitor.jobs.base import Window
    from monitor.jobs.drift import ensure_profiles, evaluate_drift

    services = _services(url)
    model = services.models.require("bench")
    runs = []
    verdicts: dict[str, bool | None] = {}
    for step in steps:
        clock = time.perf_counter()
        if step == "profile":
            ensure_profiles(services.context, model)
            runs.append({"window": step, "seconds": time.perf_counter() - clock, "rows": 0})
            continue
        evaluation = evaluate_drift(services.context, model, Window.ending(step, datetime.now(UTC)))
        seconds = time.perf_counter() - clock
        runs.append(
            {"window": step, "seconds": seconds, "rows": sum(v.rows for v in evaluation.versions)}
        )
        if not verdicts:
            verdicts = {f.name: f.detected for v in evaluation.versions for f in v.features}
    services.engine.dispose()
    return {"runs": runs, "peak_rss": _peak_rss(), "verdicts": verdicts}


def child_evidently(sizes: Sizes) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference, current = frames(sizes)
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    clock = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = time.perf_counter() - clock
    verdicts = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            method, value, threshold = config["method"], metric["value"], config["threshold"]
            if "p_value" in method:
                drifted = value <= threshold if "K-S" in method else value < threshold
            else:
                drifted = value >= threshold
            verdicts[config["column"]] = bool(drifted)
    return {"seconds": seconds, "peak_rss": _peak_rss(), "verdicts": verdicts}


def _child(quick: bool, *args: str) -> dict[str, Any]:
    flags = ["--quick"] if quick else []
    done = subprocess.run(
        [sys.executable, __file__, *flags, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- main ---------------------------------------------------------------------------------------


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every size divided by 10")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args()
    sizes = Sizes.of(args.quick)
    if args.child:
        kind, *rest = args.child
        out = child_evidently(sizes) if kind == "evidently" else child_job(rest[0], rest[1:])
        print(json.dumps(out))
        return
    quick = args.quick
    print(
        f"sizes: reference {sizes.reference:,}, 24h window {sizes.window:,}, "
        f"table {sizes.table:,} over 7 days, arrivals {sizes.arrivals:,}"
    )
    with scratch_database() as url:
        now = datetime.now(UTC)
        clock = time.perf_counter()
        load(url, sizes, now)
        print(f"loaded and vacuumed in {time.perf_counter() - clock:.1f} s")
        job = _child(quick, "job", url, "profile", "24h")
        profile, run = job["runs"]
        cold = profile["seconds"] + run["seconds"]
        print(
            f"drift job, cold: {cold:.2f} s, peak RSS {_mib(job['peak_rss'])} = reference profile "
            f"(once per reference) {profile['seconds']:.2f} s + first run (rollups of "
            f"{run['rows']:,} rows + statistics) {run['seconds']:.2f} s"
        )
        warm = _child(quick, "job", url, "24h")
        steady = warm["runs"][0]["seconds"]
        print(
            f"drift job, steady state (rollups kept up to date): {steady:.3f} s, "
            f"peak RSS {_mib(warm['peak_rss'])}"
        )
        if not args.skip_evidently:
            evidently = _child(quick, "evidently")
            print(
                f"Evidently DataDriftPreset: {evidently['seconds']:.1f} s, "
                f"peak RSS {_mib(evidently['peak_rss'])}"
            )
            print(
                f"speed-up: {evidently['seconds'] / cold:.0f}x cold, "
                f"{evidently['seconds'] / run['seconds']:.0f}x with the profile built, "
                f"{evidently['seconds'] / steady:.0f}x steady state"
            )
            agree = {k: job["verdicts"].get(k) == v for k, v in evidently["verdicts"].items()}
            print(
                f"verdicts agree: {sum(agree.values())}/{len(agree)}"
                + (
                    ""
                    if all(agree.values())
                    else f" (differ: {[k for k, a in agree.items() if not a]})"
                )
            )
        ours = {k for k, v in job["verdicts"].items() if v}
        print(f"drifted (job): {sorted(ours)}; injected: {sorted(DRIFTED)}")
        first7 = _child(quick, "job", url, "7d")["runs"][0]
        print(
            f"7d window, first run (backfills {first7['rows'] - run['rows']:,} more rows): "
            f"{first7['seconds']:.1f} s"
        )
        for label, windows in (("24h then 7d", ["24h", "7d"]), ("7d then 24h", ["7d", "24h"])):
            arrive(url, sizes.arrivals, datetime.now(UTC), seed=hash(label) % 2**31)
            again = _child(quick, "job", url, *windows)
            timings = ", ".join(
                f"{r['window']} {r['seconds']:.3f} s ({r['rows']:,} rows)" for r in again["runs"]
            )
            print(f"+{sizes.arrivals:,} rows, then {label}: {timings}")


if __name__ == "__main__":
    main()
