"""Estimated performance, multivariate drift and drift per segment together, as the scheduler
runs them, against NannyML's CBPE + domain classifier on the same data. Prints figures.

    .venv/bin/python -m benchmarks.model_quality [--quick] [--no-control]
        [--nannyml-python PATH]   (default $NANNYML_PYTHON or /tmp/nannyml-venv/bin/python)

The data are ``benchmarks/estimation.py``'s binary classifier (15 numeric + 5 categorical
features, an over-confident score): a reference of 200,000 labelled rows and, per model, a
1M-row window over the last 24h of which the oldest 20 % have their delayed labels. Two models:

- ``drifted``: n0 moved towards the decision boundary (the accuracy falls below the model's
  floor, and the features taken together change) and, inside segment ``c1=k5`` only (7 % of
  the rows), n7 moved by 0.8 sd;
- ``control`` (unless ``--no-control``): a window drawn like the reference, no drift.

Each model is configured with ``windows: [24h]``, ``performance.min.accuracy`` and ``segments:
[c1]``. Per model, in a fresh process:

1. ours: the ``estimation``, ``multivariate`` and ``segments`` jobs through the job runner
   (``monitor.jobs.runner.run_jobs``, what the scheduler and ``monitor jobs run`` call: reads,
   computes and writes the results), twice: the first tick (fits the estimator on the
   reference sample) and the next (fitted estimator kept); wall time and peak RSS of that
   process; the verdicts read back from the written results;
2. NannyML (``benchmarks/nannyml_child.py`` in the scratch venv: ``python -m venv
   /tmp/nannyml-venv && /tmp/nannyml-venv/bin/pip install nannyml==0.13.1 statsmodels
   "pandas<3"``): ``CBPE`` with the same floor as a constant threshold and
   ``DomainClassifierCalculator`` with its default threshold, on the same arrays (an .npz).
   Without that Python, only our figures are printed.

Our wall time includes PostgreSQL's work (the samples are drawn there); the peak RSS is the job
process's (PostgreSQL's backends are not counted; their memory is bounded by ``work_mem``).
``--quick`` divides the sizes by 10. ``MONITOR_BENCH_DATABASE_URL`` as in benchmarks/drift.py.
"""

from __future__ import annotations

import argparse
import json
import os
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
    SEED,
    _copy,
    _mib,
    _micros,
    _peak_rss,
    _rows,
    _scalar_field,
    _services,
    scratch_database,
)
from benchmarks.estimation import _nannyml, dataset, load_model, realized, vacuum

JOBS = ("estimation", "multivariate", "segments")
SAME_WORK = ("estimation", "multivariate")
"""The jobs doing what NannyML's side does (CBPE; a domain classifier, and our PCA besides)."""
FLOOR = 0.75
"""``performance.min.accuracy``: between the stable (0.77) and the drifted (0.72) accuracy."""
SEGMENT, SEGMENT_VALUE, SEGMENT_SHIFT = "c1", "k5", "n7"
LABELLED = 0.2
"""Share of the window (its oldest rows) whose labels have arrived."""
CONFIG = {
    "windows": ["24h"],
    "performance": {"min": {"accuracy": FLOOR}},
    "segments": [SEGMENT],
}


# --- data ---------------------------------------------------------------------------------------


def window_data(rows: int, *, drifted: bool, seed: int) -> dict[str, np.ndarray]:
    """A window; ``drifted``: n0 towards the boundary, and n7 +0.8 sd inside c1=k5 only."""
    data = dataset(rows, shifted=drifted, seed=seed)
    if drifted:
        inside = data["cat"][:, int(SEGMENT[1:])] == SEGMENT_VALUE
        column = int(SEGMENT_SHIFT[1:])
        data["num"][inside, column] += 0.8 * (1.0 + column)  # drift.py: n_j has sd 1 + j
    return data


def _ids(rows: int) -> np.ndarray:
    return np.char.zfill(np.arange(rows).astype("S9"), 9)


def _copy_labels(conn: psycopg.Connection[Any], model_id: int, ids: np.ndarray, label: Any) -> None:
    """Labels of the first ``ids.size`` rows, received now."""
    now = _micros(datetime.now(UTC))
    payload = _rows(
        _scalar_field(np.full(ids.size, model_id), ">i4"),
        _scalar_field(ids, ids.dtype.str),
        _scalar_field(label[: ids.size], ">f8"),
        _scalar_field(np.full(ids.size, now), ">i8"),
    )
    sql = "COPY labels (model_id, prediction_id, label, ts) FROM STDIN (FORMAT BINARY)"
    _copy(conn, sql, payload)
    conn.commit()


def load(url: str, reference: dict[str, Any], windows: dict[str, dict[str, Any]]) -> None:
    from monitor.storage import migrate

    now = datetime.now(UTC)
    services = _services(url)
    migrate.upgrade(services.engine)
    services.partitions.ensure({(now - timedelta(days=d)).date() for d in range(-1, 3)})
    for name, window in windows.items():
        ids = _ids(window["score"].size)
        # spread_ts sorts the times: the first rows are the oldest, the ones labelled first
        model_id = load_model(services, url, name, CONFIG, reference, window, now, ids)
        with psycopg.connect(url) as conn:
            _copy_labels(conn, model_id, ids[: int(LABELLED * ids.size)], window["label"])
    vacuum(url)
    services.engine.dispose()


# --- our side: the job runner in a fresh process -------------------------------------------------


class _Tick:
    """The service graph with a fresh job memo: each benchmark tick stands for a new window end,
    whose per-version counts a scheduler tick would not have yet (the three jobs share them)."""

    def __init__(self, services: Any) -> None:
        from dataclasses import replace

        from monitor.jobs.memo import Memo

        self.context = replace(services.context, memo=Memo())
        self.results_written = services.results_written


def child_jobs(url: str, name: str) -> dict[str, Any]:
    """Two ticks of the three jobs for model ``name``; seconds per job, peak RSS, verdicts."""
    from monitor.jobs.registry import DEFAULT_PATHS, resolve
    from monitor.jobs.runner import run_jobs

    services = _services(url)
    # imported before the clock, as NannyML is on its side (a scheduler imports them once)
    jobs = {job: resolve(DEFAULT_PATHS[job]) for job in JOBS}
    ticks = []
    for _ in range(2):
        clock = time.perf_counter()
        report = run_jobs(_Tick(services), name, None, jobs=jobs)
        if report.failures:
            raise SystemExit(report.table())
        ticks.append(
            {"total": time.perf_counter() - clock, **{o.job: o.seconds for o in report.outcomes}}
        )
    out = {"ticks": ticks, "verdicts": verdicts(services, name), "peak_rss": _peak_rss()}
    services.engine.dispose()
    return out


def verdicts(services: Any, name: str) -> dict[str, Any]:
    """What the written results say: the accuracy estimate and its band against the floor,
    both multivariate methods, and the (segment, feature) pairs found drifted."""
    from monitor.catalogue import (
        ESTIMATED_PERFORMANCE,
        ESTIMATED_PERFORMANCE_LOWER,
        ESTIMATED_PERFORMANCE_UPPER,
        MULTIVARIATE_DRIFT_SCORE,
        SEGMENT_DRIFT_DETECTED,
    )
    from monitor.storage.results import read_latest

    model = services.models.require(name)
    with services.db.connect() as conn:
        rows = read_latest(conn, model.id)
    accuracy = {
        r.metric: r.value
        for r in rows
        if r.labels.get("metric") == "accuracy"
        and r.metric
        in (
            ESTIMATED_PERFORMANCE.result,
            ESTIMATED_PERFORMANCE_LOWER.result,
            ESTIMATED_PERFORMANCE_UPPER.result,
        )
    }
    upper = accuracy[ESTIMATED_PERFORMANCE_UPPER.result]
    methods = {
        r.labels["method"]: {"score": r.value, "detected": bool(r.details["detected"])}
        for r in rows
        if r.metric == MULTIVARIATE_DRIFT_SCORE.result
    }
    segments = sorted(
        f"{r.labels['segment']}:{r.labels['feature']}"
        for r in rows
        if r.metric == SEGMENT_DRIFT_DETECTED.result and r.value == 1.0
    )
    return {
        "accuracy": accuracy[ESTIMATED_PERFORMANCE.result],
        "band": [accuracy[ESTIMATED_PERFORMANCE_LOWER.result], upper],
        "alert": upper is not None and upper < FLOOR,
        "multivariate": methods,
        "segments": segments,
    }


def _child(quick: bool, *args: str) -> dict[str, Any]:
    flags = ["--quick"] if quick else []
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.model_quality", *flags, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- main ---------------------------------------------------------------------------------------


def _ours(name: str, job: dict[str, Any]) -> str:
    first, second = job["ticks"]
    return (
        f"  {name}: first tick {first['total']:.2f} s ({_parts(first)}), next tick "
        f"{second['total']:.2f} s ({_parts(second)}), peak RSS {_mib(job['peak_rss'])}"
    )


def _parts(tick: dict[str, float]) -> str:
    return ", ".join(f"{j} {tick[j]:.2f}" for j in JOBS)


def _theirs_seconds(theirs: dict[str, Any]) -> float:
    return float(theirs["fit"] + theirs["estimate"] + theirs["domain"]["seconds"])


def _verdict_lines(name: str, ours: dict[str, Any], theirs: dict[str, Any] | None) -> list[str]:
    low, high = ours["band"]
    domain = ours["multivariate"]["domain_classifier"]
    pca = ours["multivariate"]["pca_reconstruction"]
    nml_acc = nml_dc = "-"
    if theirs is not None:
        flag = "ALERT" if theirs["alerts"]["accuracy"] else "ok"
        nml_acc = f"{theirs['estimates']['accuracy']:.4f} {flag}"
        d = theirs["domain"]
        nml_dc = f"AUC {d['auc']:.3f} {'DRIFT' if d['alert'] else 'no drift'}"
    alert = "ALERT" if ours["alert"] else "ok"
    ours_acc = f"{ours['accuracy']:.4f} [{low:.4f}, {high:.4f}] {alert}"
    ours_dc = f"AUC {domain['score']:.3f} {'DRIFT' if domain['detected'] else 'no drift'}"
    ours_pca = f"{pca['score']:.3f} {'DRIFT' if pca['detected'] else 'no drift'}"
    segments = ", ".join(ours["segments"]) or "none"
    rows = [
        (f"accuracy < floor {FLOOR}", ours_acc, nml_acc),
        ("domain classifier", ours_dc, nml_dc),
        ("PCA reconstruction", ours_pca, "- (not run)"),
        ("segments drifted", f"{len(ours['segments'])}: {segments}", "- (NannyML has none)"),
    ]
    return [f"  {name:<8} {check:<22} {o:<40} {t}" for check, o, t in rows]


def _report(
    windows: dict[str, dict[str, Any]],
    reference: dict[str, Any],
    ours: dict[str, dict[str, Any]],
    theirs: dict[str, dict[str, Any] | None],
) -> None:
    accuracy = {k: realized(v["score"], v["label"])["accuracy"] for k, v in windows.items()}
    base = realized(reference["score"], reference["label"])["accuracy"]
    rows = next(iter(windows.values()))["score"].size
    print(
        f"reference {reference['score'].size:,} labelled rows; per model a window of {rows:,} "
        f"rows x 20 features, {LABELLED:.0%} labelled; segments: [{SEGMENT}]"
    )
    print(
        f"realized accuracy: reference {base:.4f}, "
        + ", ".join(f"{k} {v:.4f}" for k, v in accuracy.items())
    )
    print("ours (estimation + multivariate + segments through the job runner, fresh process):")
    for name, job in ours.items():
        print(_ours(name, job))
    found = {k: v for k, v in theirs.items() if v is not None}
    if found:
        version = next(iter(found.values()))["version"]
        print(f"NannyML {version} CBPE + DomainClassifierCalculator (fresh process):")
        for name, t in found.items():
            print(
                f"  {name}: {_theirs_seconds(t):.2f} s (CBPE fit {t['fit']:.2f} + estimate "
                f"{t['estimate']:.2f}, domain classifier {t['domain']['seconds']:.2f}), "
                f"peak RSS {_mib(t['peak_rss'])}"
            )
        print("ratios (NannyML / ours):")
        for name, t in found.items():
            first, second = ours[name]["ticks"]
            total = _theirs_seconds(t)
            same = [sum(tick[j] for j in SAME_WORK) for tick in (first, second)]
            print(
                f"  {name}: {total / first['total']:.1f}x faster first tick, "
                f"{total / second['total']:.1f}x next tick; our peak RSS "
                f"{ours[name]['peak_rss'] / t['peak_rss']:.2f} of NannyML's; the same methods "
                f"only ({' + '.join(SAME_WORK)} jobs: {same[0]:.2f} s / {same[1]:.2f} s) "
                f"{total / same[0]:.1f}x / {total / same[1]:.1f}x"
            )
    print(f"verdicts:  {'model':<8} {'check':<22} {'ours':<40} NannyML")
    for name in ours:
        print("\n".join(_verdict_lines(name, ours[name]["verdicts"], theirs.get(name))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes divided by 10")
    parser.add_argument("--no-control", action="store_true", help="only the drifted model")
    parser.add_argument(
        "--nannyml-python",
        default=os.environ.get("NANNYML_PYTHON", "/tmp/nannyml-venv/bin/python"),
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_jobs(*args.child)))
        return
    scale = 10 if args.quick else 1
    reference = dataset(200_000 // scale, shifted=False, seed=SEED)
    windows = {"drifted": window_data(1_000_000 // scale, drifted=True, seed=SEED + 1)}
    if not args.no_control:
        windows["control"] = window_data(1_000_000 // scale, drifted=False, seed=SEED + 2)
    ours: dict[str, dict[str, Any]] = {}
    theirs: dict[str, dict[str, Any] | None] = {}
    with tempfile.TemporaryDirectory(prefix="mm_bench_quality") as tmp:
        with scratch_database() as url:
            clock = time.perf_counter()
            load(url, reference, windows)
            print(f"loaded and vacuumed in {time.perf_counter() - clock:.1f} s")
            for name in windows:
                ours[name] = _child(args.quick, url, name)
        for name, window in windows.items():
            data = Path(tmp) / f"{name}.npz"
            np.savez(
                data,
                **{f"reference_{k}": v for k, v in reference.items()},
                **{f"window_{k}": v for k, v in window.items()},
            )
            flags = ("--domain-classifier", f"--floor=accuracy={FLOOR}")
            theirs[name] = _nannyml(args.nannyml_python, data, *flags)
            data.unlink()
    _report(windows, reference, ours, theirs)


if __name__ == "__main__":
    main()
