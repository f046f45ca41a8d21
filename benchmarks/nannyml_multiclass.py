"""NannyML's side of benchmarks/multiclass.py, run by the scratch venv's Python.

    /tmp/nannyml-venv/bin/python benchmarks/nannyml_multiclass.py DATA.npz

Fits ``nannyml.CBPE(problem_type="classification_multiclass")`` on the reference and estimates
the window as one chunk; prints one JSON line with the timings and the estimates.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

CLASSES = ["bird", "cat", "dog"]
METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc"]


def frame(data: Any, side: str) -> Any:
    import pandas as pd

    x = data[f"{side}_x"]
    out = pd.DataFrame(x, columns=[f"x{j}" for j in range(x.shape[1])])
    scores = data[f"{side}_scores"]
    for k, name in enumerate(CLASSES):
        out[f"p_{name}"] = scores[:, k]
    out["pred"] = np.array(CLASSES)[np.argmax(scores, axis=1)]
    if f"{side}_label" in data:
        out["label"] = np.array(CLASSES)[data[f"{side}_label"]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    args = parser.parse_args()
    import nannyml as nml

    data = np.load(args.data)
    reference, window = frame(data, "reference"), frame(data, "window")
    estimator = nml.CBPE(
        y_pred_proba={name: f"p_{name}" for name in CLASSES},
        y_pred="pred",
        y_true="label",
        problem_type="classification_multiclass",
        metrics=METRICS,
        chunk_number=1,
    )
    clock = time.perf_counter()
    estimator.fit(reference)
    fitted = time.perf_counter()
    table = estimator.estimate(window).filter(period="analysis").to_df()
    done = time.perf_counter()
    out = {
        "version": nml.__version__,
        "fit": fitted - clock,
        "estimate": done - fitted,
        "estimates": {m: float(table[(m, "value")].iloc[-1]) for m in METRICS},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
