"""NannyML's side of benchmarks/estimation.py, run by the scratch venv's Python (not ml-monitor's).

    /tmp/nannyml-venv/bin/python benchmarks/nannyml_child.py DATA.npz [--domain-classifier]
        [--floor accuracy=0.76]

Reads the arrays the benchmark wrote, fits ``nannyml.CBPE`` on the reference and estimates the
window as one chunk (with ``--floor``, a ``ConstantThreshold(lower=...)`` on that metric, so its
alert means "estimate below the floor"); with ``--domain-classifier`` also runs its
``DomainClassifierCalculator`` (default threshold 0.45-0.65 AUC). Prints one JSON line:
timings, peak RSS, the estimates and the alerts.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]
NUMERIC = [f"n{i}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(5)]


def _rss(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def frame(data: Any, side: str) -> Any:
    import pandas as pd

    out = pd.DataFrame(data[f"{side}_num"], columns=NUMERIC)
    cat = data[f"{side}_cat"]
    for j, name in enumerate(CATEGORICAL):
        out[name] = pd.Categorical(cat[:, j].astype(str))
    out["score"] = data[f"{side}_score"]
    out["pred"] = (out["score"] >= 0.5).astype(int)
    out["label"] = data[f"{side}_label"].astype(int)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--domain-classifier", action="store_true")
    parser.add_argument("--floor", action="append", default=[], help="METRIC=VALUE")
    args = parser.parse_args()
    import nannyml as nml
    from nannyml.thresholds import ConstantThreshold

    floors = {m: float(v) for m, _, v in (f.partition("=") for f in args.floor)}

    data = np.load(args.data)
    reference, window = frame(data, "reference"), frame(data, "window")
    rss_data = _rss("VmRSS:")
    estimator = nml.CBPE(
        y_pred_proba="score",
        y_pred="pred",
        y_true="label",
        problem_type="classification_binary",
        metrics=METRICS,
        chunk_number=1,
        thresholds={m: ConstantThreshold(lower=v) for m, v in floors.items()},
    )
    clock = time.perf_counter()
    estimator.fit(reference)
    fitted = time.perf_counter()
    result = estimator.estimate(window.drop(columns=["label"])).filter(period="analysis")
    done = time.perf_counter()
    table = result.to_df()
    estimates = {m: float(table[(m, "value")].iloc[-1]) for m in METRICS}
    errors = {m: float(table[(m, "sampling_error")].iloc[-1]) for m in METRICS}
    out: dict[str, Any] = {
        "version": nml.__version__,
        "fit": fitted - clock,
        "estimate": done - fitted,
        "estimates": estimates,
        "sampling_error": errors,
        "alerts": {m: bool(table[(m, "alert")].iloc[-1]) for m in floors},
        "rss_data": rss_data,
    }
    if args.domain_classifier:
        calculator = nml.DomainClassifierCalculator(
            feature_column_names=NUMERIC + CATEGORICAL, chunk_number=1
        )
        clock = time.perf_counter()
        calculator.fit(reference)
        drift = calculator.calculate(window).filter(period="analysis").to_df()
        seconds = time.perf_counter() - clock
        auc = float(drift[("domain_classifier_auroc", "value")].iloc[-1])
        alert = bool(drift[("domain_classifier_auroc", "alert")].iloc[-1])
        out["domain"] = {"seconds": seconds, "auc": auc, "alert": alert}
    out["peak_rss"] = _rss("VmHWM:")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
