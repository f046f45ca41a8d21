"""Estimated performance (CBPE) vs NannyML's CBPE on the same data, in one run. Prints figures.

    .venv/bin/python benchmarks/estimation.py [--quick] [--nannyml-python PATH]

One synthetic binary classifier (15 numeric + 5 categorical features, as benchmarks/drift.py):
the positive-class probability depends on n0..n2 and c0, the model's score is that probability
made over-confident (so the reference shows it uncalibrated and both sides recalibrate), labels
are drawn from the probability. The reference has 1M labelled rows; the 24h window 1M rows in
which n0 has moved towards the decision boundary (the accuracy falls).

1. the estimation job over the window, in a fresh process: cold (the reference sample read and
   the calibration fitted) and warm (the fitted reference kept, as on every later tick); wall
   time and peak RSS;
2. NannyML 0.13.1 ``CBPE`` (fit on the reference, estimate the window as one chunk) and, with
   ``--domain-classifier``, its ``DomainClassifierCalculator``, in a fresh process of the scratch
   venv (NannyML does not install beside ml-monitor's pins: ``python -m venv /tmp/nannyml-venv
   && /tmp/nannyml-venv/bin/pip install nannyml==0.13.1``); both get the same arrays (an .npz);
3. the estimates side by side with the realized figures (the labels of the window are known
   here) and whether each realized figure lies in our band.

``--quick`` divides the sizes by 10. ``MONITOR_BENCH_DATABASE_URL`` as in benchmarks/drift.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from benchmarks.drift import (
    CATEGORICAL,
    NUMERIC,
    SEED,
    _array_field,
    _cat_bytes,
    _copy,
    _peak_rss,
    _rows,
    _scalar_field,
    _services,
    features,
    scratch_database,
    spread_ts,
)

DEFAULT_NANNYML = "/tmp/nannyml-venv/bin/python"
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
_NANNYML_CHILD = Path(__file__).with_name("nannyml_child.py")


def probabilities(num: np.ndarray, cat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true positive-class probability, the model's over-confident score)."""
    z = (num[:, 0] - 0.0) / 1.0 - 0.6 * (num[:, 1] - 10.0) / 2.0 + 0.4 * (num[:, 2] - 20.0) / 3.0
    z = z + np.where(cat[:, 0] == "k0", 0.8, 0.0) - 0.25
    p = 1.0 / (1.0 + np.exp(-1.5 * z))
    score = 1.0 / (1.0 + np.exp(-2.2 * z))  # same ranking, too sure of itself
    return p, score


def dataset(rows: int, *, shifted: bool, seed: int) -> dict[str, np.ndarray]:
    num, cat = features(rows, drifted=False, seed=seed)
    if shifted:
        num[:, 0] *= 0.35  # towards the boundary: the model is right less often
    p, score = probabilities(num, cat)
    label = (np.random.default_rng(seed + 99).random(rows) < p).astype(np.float64)
    return {"num": num, "cat": cat, "score": score, "label": label}


def realized(score: np.ndarray, label: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    predicted = (score >= 0.5).astype(int)
    return {
        "accuracy": float(skm.accuracy_score(label, predicted)),
        "precision": float(skm.precision_score(label, predicted)),
        "recall": float(skm.recall_score(label, predicted)),
        "f1": float(skm.f1_score(label, predicted)),
        "roc_auc": float(skm.roc_auc_score(label, score)),
    }


# --- database -----------------------------------------------------------------------------------


def _copy_reference(conn: psycopg.Connection[Any], reference_id: int, data: dict[str, Any]) -> None:
    rows = data["score"].size
    for lo in range(0, rows, 200_000):
        hi = min(lo + 200_000, rows)
        payload = _rows(
            _scalar_field(np.full(hi - lo, reference_id), ">i4"),
            _array_field(data["num"][lo:hi], 701, 8),
            _array_field(_cat_bytes(data["cat"][lo:hi]), 25, 2),
            _scalar_field(data["score"][lo:hi], ">f8"),
            _scalar_field(data["label"][lo:hi], ">f8"),
        )
        sql = (
            "COPY reference_rows (reference_id, num, cat, prediction, label) "
            "FROM STDIN (FORMAT BINARY)"
        )
        _copy(conn, sql, payload)


def _copy_window(
    conn: psycopg.Connection[Any],
    model_id: int,
    ts: np.ndarray,
    data: dict[str, Any],
    ids: np.ndarray | None = None,
) -> None:
    """The window's predictions; ``ids`` (fixed-width bytes) as their prediction ids."""
    columns = "model_id, model_version, ts, num, cat, prediction"
    for lo in range(0, ts.size, 200_000):
        hi = min(lo + 200_000, ts.size)
        fields = [
            _scalar_field(np.full(hi - lo, model_id), ">i4"),
            np.zeros(hi - lo, dtype=[("len", ">i4")]),  # model_version ''
            _scalar_field(ts[lo:hi], ">i8"),
            _array_field(data["num"][lo:hi], 701, 8),
            _array_field(_cat_bytes(data["cat"][lo:hi]), 25, 2),
            _scalar_field(data["score"][lo:hi], ">f8"),
        ]
        if ids is not None:
            fields.append(_scalar_field(ids[lo:hi], ids.dtype.str))
        names = f"{columns}{', prediction_id' if ids is not None else ''}"
        _copy(conn, f"COPY predictions ({names}) FROM STDIN (FORMAT BINARY)", _rows(*fields))
        conn.commit()


def load_model(
    services: Any,
    url: str,
    name: str,
    config: dict[str, Any],
    reference: dict[str, Any],
    window: dict[str, Any],
    now: datetime,
    ids: np.ndarray | None = None,
) -> int:
    """Model ``name`` (binary classifier, the 20 features) with ``reference`` as its active
    reference set and ``window`` spread over the 24h before ``now``; its id."""
    from monitor.ingest.schema import CATEGORICAL as CAT
    from monitor.ingest.schema import NUMERIC as NUM
    from monitor.ingest.schema import Feature, FeatureSchema
    from monitor.storage import references

    schema = FeatureSchema(
        tuple(Feature(n, NUM) for n in NUMERIC) + tuple(Feature(n, CAT) for n in CATEGORICAL)
    )
    record, _ = services.models.put(
        name, task="classification", schema=schema, prediction_kind=None, config=config
    )
    with services.engine.begin() as conn:
        ref_id = references.create_set(conn, record.id, "", "upload")
        _copy_reference(conn.connection.driver_connection, ref_id, reference)
        references.activate(conn, ref_id, record.id, "", reference["score"].size)
    with psycopg.connect(url) as conn:
        ts = spread_ts(window["score"].size, now - timedelta(hours=24), now, SEED + 4)
        _copy_window(conn, record.id, ts, window, ids)
    return int(record.id)


def vacuum(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("predictions", "reference_rows", "labels"):
            conn.execute(f"VACUUM ANALYZE {table}")


def load(url: str, reference: dict[str, Any], window: dict[str, Any], now: datetime) -> None:
    from monitor.storage import migrate

    services = _services(url)
    migrate.upgrade(services.engine)
    services.partitions.ensure({(now - timedelta(days=d)).date() for d in range(-1, 3)})
    config = {"performance": {"min": {"accuracy": 0.8}}}
    load_model(services, url, "bench", config, reference, window, now)
    vacuum(url)
    services.engine.dispose()


# --- children -----------------------------------------------------------------------------------


def child_job(url: str) -> dict[str, Any]:
    """The estimation job over the 24h window twice: cold (fits), then warm (cached fit)."""
    from monitor.catalogue import (
        ESTIMATED_PERFORMANCE,
        ESTIMATED_PERFORMANCE_LOWER,
        ESTIMATED_PERFORMANCE_UPPER,
    )
    from monitor.jobs.base import Window
    from monitor.jobs.estimation import run_estimation

    services = _services(url)
    model = services.models.require("bench")
    window = Window.ending("24h", datetime.now(UTC))
    runs = []
    for _ in range(2):
        clock = time.perf_counter()
        results = run_estimation(services.context, model, window)
        runs.append(time.perf_counter() - clock)
    figures: dict[str, dict[str, float]] = {}
    names = {
        ESTIMATED_PERFORMANCE.result: "value",
        ESTIMATED_PERFORMANCE_LOWER.result: "lower",
        ESTIMATED_PERFORMANCE_UPPER.result: "upper",
    }
    for r in results:
        if r.metric in names and r.value is not None:
            figures.setdefault(r.labels["metric"], {})[names[r.metric]] = r.value
    services.engine.dispose()
    return {"cold": runs[0], "warm": runs[1], "peak_rss": _peak_rss(), "figures": figures}


def _child(quick: bool, *args: str) -> dict[str, Any]:
    flags = ["--quick"] if quick else []
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.estimation", *flags, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _nannyml(python: str, data: Path, *flags: str) -> dict[str, Any] | None:
    """benchmarks/nannyml_child.py on ``data`` in the scratch venv; None without NannyML."""
    if not Path(python).exists():
        print(f"NannyML: {python} not found; skipped (see the module docstring)")
        return None
    args = [python, str(_NANNYML_CHILD), str(data), *flags]
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- main ---------------------------------------------------------------------------------------


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def _table(
    ours: dict[str, dict[str, float]], theirs: dict[str, Any] | None, truth: dict[str, float]
) -> None:
    head = f"{'metric':<10}{'realized':>10}{'ours':>9}{'our band':>19}{'NannyML':>10}"
    print(f"{head}{'|diff|':>9}  in band")
    for m in METRICS:
        o = ours.get(m, {})
        t = (theirs or {}).get("estimates", {}).get(m)
        band = f"{o.get('lower', float('nan')):.4f}-{o.get('upper', float('nan')):.4f}"
        diff = abs(o.get("value", float("nan")) - t) if t is not None else float("nan")
        held = o.get("lower", 1) <= truth[m] <= o.get("upper", 0)
        nml = f"{t:.4f}" if t is not None else "-"
        print(
            f"{m:<10}{truth[m]:>10.4f}{o.get('value', float('nan')):>9.4f}{band:>19}"
            f"{nml:>10}{diff:>9.4f}  {'yes' if held else 'NO'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes divided by 10")
    parser.add_argument("--nannyml-python", default=DEFAULT_NANNYML)
    parser.add_argument("--domain-classifier", action="store_true", help="NannyML's too")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_job(args.child[1])))
        return
    rows = 100_000 if args.quick else 1_000_000
    reference = dataset(rows, shifted=False, seed=SEED)
    window = dataset(rows, shifted=True, seed=SEED + 1)
    truth = realized(window["score"], window["label"])
    print(f"reference {rows:,} labelled rows, window {rows:,} rows x 20 features (binary CBPE)")
    with tempfile.TemporaryDirectory(prefix="mm_bench_est") as tmp:
        data = Path(tmp) / "data.npz"
        np.savez(
            data,
            **{f"reference_{k}": v for k, v in reference.items()},
            **{f"window_{k}": v for k, v in window.items()},
        )
        with scratch_database() as url:
            clock = time.perf_counter()
            load(url, reference, window, datetime.now(UTC))
            print(f"loaded and vacuumed in {time.perf_counter() - clock:.1f} s")
            del reference, window
            job = _child(args.quick, "job", url)
        print(
            f"estimation job: cold {job['cold']:.2f} s (reference sample + calibration), "
            f"warm {job['warm']:.2f} s (fitted reference kept), peak RSS {_mib(job['peak_rss'])}"
        )
        theirs = _nannyml(
            args.nannyml_python, data, *(["--domain-classifier"] if args.domain_classifier else [])
        )
    if theirs is not None:
        print(
            f"NannyML {theirs['version']} CBPE: fit {theirs['fit']:.2f} s + estimate "
            f"{theirs['estimate']:.2f} s = {theirs['fit'] + theirs['estimate']:.2f} s, peak RSS "
            f"{_mib(theirs['peak_rss'])} (after reading the arrays: {_mib(theirs['rss_data'])})"
        )
        total = theirs["fit"] + theirs["estimate"]
        print(
            f"speed-up: {total / job['cold']:.1f}x cold, {total / job['warm']:.1f}x warm; "
            f"memory: {job['peak_rss'] / theirs['peak_rss']:.2f} of NannyML's peak RSS"
        )
        if "domain" in theirs:
            d = theirs["domain"]
            print(f"NannyML DomainClassifierCalculator: {d['seconds']:.1f} s, AUC {d['auc']:.4f}")
    _table(job["figures"], theirs, truth)


if __name__ == "__main__":
    main()
