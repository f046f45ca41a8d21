"""Multiclass CBPE vs NannyML's multiclass CBPE on the same data, in one run. Prints figures.

    .venv/bin/python -m benchmarks.multiclass [--rows N] [--nannyml-python PATH]

A synthetic three-class classifier (four numeric features): the true class probabilities are a
softmax of the features, the model's scores that softmax made over-confident (so both sides
recalibrate), the predicted class the top score, labels drawn from the true probabilities. The
reference (N labelled rows, default 50,000) and the window (N rows, in which the features
shrink towards 0, where the classes overlap: the model is right less often) go in through
ml-monitor's own ingest paths with their ``probabilities``, so the job reads what a user's
model would have logged. Then:

1. the estimation job over the window (cold: the reference sample read and calibrated; warm:
   the fitted reference kept), wall time, in this process;
2. NannyML 0.13.1 ``CBPE(problem_type="classification_multiclass")`` on the same arrays, in the
   scratch venv (``benchmarks/nannyml_multiclass.py``; install as benchmarks/estimation.py
   says);
3. estimates side by side with the realized (macro-averaged) figures of the window, and whether
   each realized figure and NannyML's estimate lie in our band.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import scratch_database
from benchmarks.drift import _services
from benchmarks.estimation import DEFAULT_NANNYML, METRICS

CLASSES = ("bird", "cat", "dog")
FEATURES = ("x0", "x1", "x2", "x3")
_CHILD = Path(__file__).with_name("nannyml_multiclass.py")
_WEIGHTS = np.array([[1.2, -0.4, 0.0], [0.0, 1.0, -0.8], [-0.6, 0.0, 0.9], [0.3, 0.3, -0.5]])


def dataset(rows: int, *, shifted: bool, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (rows, len(FEATURES)))
    if shifted:
        x *= 0.45
    logits = x @ _WEIGHTS + np.array([0.2, 0.0, -0.1])
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    sharp = np.exp(2.0 * logits)
    scores = sharp / sharp.sum(axis=1, keepdims=True)
    labels = (rng.random(rows)[:, None] >= np.cumsum(truth, axis=1)[:, :-1]).sum(axis=1)
    return {"x": x.round(5), "scores": scores.round(6), "label": labels}


def realized(data: dict[str, np.ndarray]) -> dict[str, float]:
    from sklearn import metrics as skm

    y, s = data["label"], data["scores"]
    predicted = np.argmax(s, axis=1)
    return {
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "precision": float(skm.precision_score(y, predicted, average="macro")),
        "recall": float(skm.recall_score(y, predicted, average="macro")),
        "f1": float(skm.f1_score(y, predicted, average="macro")),
        "roc_auc": float(skm.roc_auc_score(y, s, multi_class="ovr", average="macro")),
    }


def _records(data: dict[str, np.ndarray], *, reference: bool, start: datetime) -> list[dict]:
    out = []
    for i, (x, s, y) in enumerate(zip(data["x"], data["scores"], data["label"], strict=True)):
        row: dict[str, Any] = dict(zip(FEATURES, map(float, x), strict=True))
        scores = dict(zip(CLASSES, map(float, s), strict=True))
        predicted = CLASSES[int(np.argmax(s))]
        if reference:
            out.append({**row, "prediction": predicted, "label": CLASSES[y]})
            out[-1]["probabilities"] = scores
        else:
            out.append(
                {
                    "model": "pets",
                    "prediction_id": f"w{i}",
                    "timestamp": (start + timedelta(seconds=i * 3000 / len(data["x"]))).isoformat(),
                    "features": row,
                    "prediction": predicted,
                    "probabilities": scores,
                }
            )
    return out


def load(services: Any, reference: dict[str, Any], window: dict[str, Any], now: datetime) -> None:
    records = _records(reference, reference=True, start=now)
    chunks = [records[i : i + 10_000] for i in range(0, len(records), 10_000)]
    services.references.upload("pets", "", chunks)
    rows = _records(window, reference=False, start=now - timedelta(minutes=55))
    for i in range(0, len(rows), 5_000):
        services.ingest.predictions(rows[i : i + 5_000])


def ours(services: Any, now: datetime) -> tuple[list[float], dict[str, dict[str, float]]]:
    from monitor.catalogue import (
        ESTIMATED_PERFORMANCE,
        ESTIMATED_PERFORMANCE_LOWER,
        ESTIMATED_PERFORMANCE_UPPER,
    )
    from monitor.jobs.base import Window
    from monitor.jobs.estimation import run_estimation

    model = services.models.require("pets")
    window = Window.ending("1h", now)
    times, results = [], []
    for _ in range(2):
        clock = time.perf_counter()
        results = run_estimation(services.context, model, window)
        times.append(time.perf_counter() - clock)
    names = {
        ESTIMATED_PERFORMANCE.result: "value",
        ESTIMATED_PERFORMANCE_LOWER.result: "lower",
        ESTIMATED_PERFORMANCE_UPPER.result: "upper",
    }
    figures: dict[str, dict[str, float]] = {}
    for r in results:
        if r.metric in names and r.value is not None:
            figures.setdefault(r.labels["metric"], {})[names[r.metric]] = r.value
    return times, figures


def nannyml(python: str, data: Path) -> dict[str, Any] | None:
    if not Path(python).exists():
        print(f"NannyML: {python} not found; skipped (see benchmarks/estimation.py)")
        return None
    done = subprocess.run([python, str(_CHILD), str(data)], check=True, capture_output=True)
    return json.loads(done.stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--nannyml-python", default=DEFAULT_NANNYML)
    args = parser.parse_args()
    reference = dataset(args.rows, shifted=False, seed=1)
    window = dataset(args.rows, shifted=True, seed=2)
    truth, before = realized(window), realized(reference)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    print(f"three classes, reference {args.rows:,} labelled rows, window {args.rows:,} rows")
    print(f"realized accuracy: reference {before['accuracy']:.4f}, window {truth['accuracy']:.4f}")
    with scratch_database("mm_bench_mc") as url:
        services = _services(url)
        services.partitions.ensure({(now - timedelta(days=d)).date() for d in range(-1, 2)})
        clock = time.perf_counter()
        services.models.put(
            "pets", task="classification", schema=None, prediction_kind=None, config={}
        )
        load(services, reference, window, now)
        print(f"loaded through ingest in {time.perf_counter() - clock:.1f} s")
        times, figures = ours(services, now)
        services.engine.dispose()
    print(f"estimation job: cold {times[0]:.2f} s, warm {times[1]:.2f} s")
    with tempfile.TemporaryDirectory(prefix="mm_bench_mc") as tmp:
        data = Path(tmp) / "data.npz"
        np.savez(
            data,
            reference_x=reference["x"],
            reference_scores=reference["scores"],
            reference_label=reference["label"],
            window_x=window["x"],
            window_scores=window["scores"],
        )
        theirs = nannyml(args.nannyml_python, data)
    if theirs is not None:
        total = theirs["fit"] + theirs["estimate"]
        print(f"NannyML {theirs['version']} multiclass CBPE: {total:.2f} s")
    estimates = (theirs or {}).get("estimates", {})
    print(f"{'metric':<10}{'realized':>10}{'ours':>9}{'our band':>19}{'NannyML':>10}  in band")
    for m in METRICS:
        o = figures.get(m, {})
        t = estimates.get(m)
        low, high = o.get("lower", float("nan")), o.get("upper", float("nan"))
        held = "realized " + ("yes" if low <= truth[m] <= high else "NO")
        if t is not None:
            held += ", NannyML " + ("yes" if low <= t <= high else "NO")
        nml = f"{t:.4f}" if t is not None else "-"
        print(
            f"{m:<10}{truth[m]:>10.4f}{o.get('value', float('nan')):>9.4f}"
            f"{f'{low:.4f}-{high:.4f}':>19}{nml:>10}  {held}"
        )


if __name__ == "__main__":
    main()
