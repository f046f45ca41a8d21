"""Multivariate drift and drift per segment: the jobs' wall time and peak RSS on one window,
against the same computations without the bounded samples and against Evidently's domain
classifier, each in a fresh process. Prints figures.

    .venv/bin/python benchmarks/multivariate.py [--rows 100000]

The data are ``benchmarks/drift.py``'s (15 numeric + 5 categorical features, drift injected in
7): a window of ``--rows`` rows in the last 24h against a reference of as many rows, with
``segments: [c0, c1]`` (8 values each, so 2 × 8 segments).

1. ``ours``: ``evaluate_multivariate`` (5000-row samples per side) and ``evaluate_segments``
   (1000 rows per segment and side), as the scheduled jobs run them;
2. ``full``: every row of both sides read and both multivariate methods run on all of them
   (what the bounded sample saves);
3. ``evidently``: Evidently 0.7's ``embedding_drift_methods.model()`` (its domain classifier)
   on the two whole DataFrames in memory (categories one-hot encoded), no database read.

``MONITOR_BENCH_DATABASE_URL`` (admin URL) is where a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from benchmarks.drift import CATEGORICAL, Sizes, frames, load, scratch_database

SEGMENTS = ["c0", "c1"]


def _services(url: str) -> Any:
    from prometheus_client import CollectorRegistry

    from monitor.config import Settings
    from monitor.services import build_services

    return build_services(
        Settings(database_url=url, api_tokens=[]), url, registry=CollectorRegistry()
    )


def _peak_rss() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _window() -> Any:
    from monitor.jobs.base import Window

    return Window.ending("24h", datetime.now(UTC))


def child_ours(url: str) -> dict[str, Any]:
    """The jobs' computations; then the multivariate one again, split into read and compute."""
    from monitor.jobs.multivariate import compare, evaluate_multivariate, settings_of
    from monitor.jobs.segments import evaluate_segments
    from monitor.storage import rowsample
    from monitor.storage.span import Span

    services = _services(url)
    model = services.models.require("bench")
    clock = time.perf_counter()
    (version,) = evaluate_multivariate(services.db, model, _window())
    multivariate = time.perf_counter() - clock
    window = _window()
    clock = time.perf_counter()
    (reference,) = rowsample.active_references(services.db, model.id)
    (current,) = rowsample.window_samples(
        services.db, reference.scope, Span(model.id, window.start, window.end), model.schema, 5000
    ).values()
    sample = rowsample.reference_sample(services.db, reference, model.schema, 5000)
    read = time.perf_counter() - clock
    clock = time.perf_counter()
    compare(sample, current, settings_of(model), seed=model.id)
    compute = time.perf_counter() - clock
    clock = time.perf_counter()
    (segmented,) = evaluate_segments(services.db, model, _window())
    segments = time.perf_counter() - clock
    services.engine.dispose()
    drifted = sorted(
        f"{s.label}:{f.feature}" for s in segmented.segments for f in s.features if f.detected
    )
    return {
        "multivariate_seconds": multivariate,
        "read_seconds": read,
        "compute_seconds": compute,
        "segments_seconds": segments,
        "peak_rss": _peak_rss(),
        "verdicts": {m.method: m.detected for m in version.methods},
        "scores": {m.method: m.score for m in version.methods},
        "sampled": [version.sampled_window, version.sampled_reference],
        "segments": len(segmented.segments),
        "segment_features_drifted": len(drifted),
    }


def child_full(url: str, rows: int) -> dict[str, Any]:
    from monitor.jobs.multivariate import compare
    from monitor.schemas import MultivariateSettings
    from monitor.storage import rowsample
    from monitor.storage.span import Span

    services = _services(url)
    model = services.models.require("bench")
    window = _window()
    clock = time.perf_counter()
    (reference,) = rowsample.active_references(services.db, model.id)
    span = Span(model.id, window.start, window.end)
    (current,) = rowsample.window_samples(
        services.db, reference.scope, span, model.schema, rows
    ).values()
    sample = rowsample.reference_sample(services.db, reference, model.schema, rows)
    methods = compare(sample, current, MultivariateSettings(sample_rows=rows), seed=model.id)
    seconds = time.perf_counter() - clock
    services.engine.dispose()
    return {
        "seconds": seconds,
        "peak_rss": _peak_rss(),
        "verdicts": {m.method: m.detected for m in methods},
        "scores": {m.method: m.score for m in methods},
    }


def child_evidently(rows: int) -> dict[str, Any]:
    import pandas as pd
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import model

    reference, current = frames(Sizes(rows, rows, rows, 0))
    clock = time.perf_counter()
    encoded = pd.get_dummies(pd.concat([reference, current]), columns=CATEGORICAL, dtype=float)
    ref, cur = encoded.iloc[: len(reference)].copy(), encoded.iloc[len(reference) :].copy()
    score, drifted, _ = model()(cur, ref)
    seconds = time.perf_counter() - clock
    return {"seconds": seconds, "peak_rss": _peak_rss(), "score": score, "drifted": bool(drifted)}


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.multivariate", "--child", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "ours":
            out = child_ours(rest[0])
        elif kind == "full":
            out = child_full(rest[0], int(rest[1]))
        else:
            out = child_evidently(int(rest[0]))
        print(json.dumps(out))
        return
    rows = args.rows
    with scratch_database() as url:
        now = datetime.now(UTC)
        load(url, Sizes(rows, rows, rows, 0), now)
        services = _services(url)
        record = services.models.require("bench")
        services.models.put(
            "bench",
            task="classification",
            schema=record.schema,
            prediction_kind=None,
            config={"segments": SEGMENTS},
        )
        services.engine.dispose()
        ours = _child("ours", url)
        full = _child("full", url, str(rows))
    evidently = _child("evidently", str(rows))
    print(f"window {rows:,} rows x 20 features, reference {rows:,} rows")
    print(
        f"ours: multivariate {ours['multivariate_seconds']:.2f} s (again: sample read "
        f"{ours['read_seconds']:.2f} s + compute {ours['compute_seconds']:.2f} s; samples "
        f"{ours['sampled'][0]:,} + {ours['sampled'][1]:,}), segments "
        f"{ours['segments_seconds']:.2f} s ({ours['segments']} segments, "
        f"{ours['segment_features_drifted']} segment features drifted), peak RSS "
        f"{_mib(ours['peak_rss'])}; verdicts {ours['verdicts']}, scores {ours['scores']}"
    )
    print(
        f"full (every row, same methods): {full['seconds']:.2f} s, peak RSS "
        f"{_mib(full['peak_rss'])}; verdicts {full['verdicts']}, scores {full['scores']}"
    )
    print(
        f"evidently model() on DataFrames in memory: {evidently['seconds']:.2f} s, peak RSS "
        f"{_mib(evidently['peak_rss'])}; score {evidently['score']:.3f}, drift "
        f"{evidently['drifted']}"
    )
    print(
        f"multivariate job vs full: {full['seconds'] / ours['multivariate_seconds']:.1f}x "
        f"faster, {full['peak_rss'] / ours['peak_rss']:.1f}x less memory; vs Evidently: "
        f"{evidently['seconds'] / ours['multivariate_seconds']:.1f}x time, "
        f"{evidently['peak_rss'] / ours['peak_rss']:.1f}x memory"
    )


if __name__ == "__main__":
    main()
