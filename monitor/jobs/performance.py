"""Model quality from delayed labels: predictions of the window joined to their labels.

Classification (the model's ``task``): numeric scores in [0, 1] against a label with at most
two values are a binary problem for ``positive_class`` (config, default 1): the label metrics
threshold the score at 0.5, ROC AUC and log loss use the score itself. Anything else (text
predictions, class numbers) compares prediction and label as class names, for
``positive_class`` if configured, else macro-averaged; where the model logged ``probabilities``
for every class, also a one-vs-rest ROC AUC. Regression: MAE, RMSE, MAPE.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from monitor.catalogue import MODEL_PERFORMANCE, WINDOW_SAMPLES
from monitor.jobs.base import Window
from monitor.jobs.context import JobContext
from monitor.stats import performance as perf
from monitor.storage.labelled import Labelled, labelled_predictions
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.storage.span import Span

THRESHOLD = 0.5
DEFAULT_POSITIVE = "1"

Figures = dict[str, float | None]


def run_performance(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
    compute = _TASKS.get(model.task)
    if compute is None:
        return []
    groups = labelled_predictions(ctx.db, Span(model.id, window.start, window.end))
    positive = model.options.positive_class
    out: list[Result] = []
    for group in groups:
        figures, samples = compute(group, positive)
        if samples == 0:
            continue
        out += [
            Result(
                group.model_version,
                window.name,
                MODEL_PERFORMANCE.result,
                value,
                {"metric": name},
                {"samples": samples},
            )
            for name, value in figures.items()
            if value is not None
        ]
        out.append(
            Result(
                group.model_version,
                window.name,
                WINDOW_SAMPLES.result,
                float(samples),
                {"metric": "performance"},
            )
        )
    return out


def class_name(value: float) -> str:
    """A numeric class as text: 1.0 -> "1", 2.5 -> "2.5" (labels and configs spell them so)."""
    return str(int(value)) if value.is_integer() else repr(value)


def _texts(numbers: npt.NDArray[np.float64], texts: list[str | None]) -> list[str | None]:
    return [
        t if t is not None else (None if np.isnan(n) else class_name(float(n)))
        for n, t in zip(numbers, texts, strict=True)
    ]


def classification(group: Labelled, positive_class: object) -> tuple[Figures, int]:
    truth = _texts(group.label, group.label_text)
    positive = _positive(positive_class)
    if _binary_scores(group.prediction, truth):
        hit = np.array(truth, dtype=object) == (positive or DEFAULT_POSITIVE)
        return _binary(hit, group.prediction), group.size
    predicted = _texts(group.prediction, group.prediction_text)
    scores = group.probabilities or [None] * group.size
    kept = [
        (t, p, s)
        for t, p, s in zip(truth, predicted, scores, strict=True)
        if t is not None and p is not None
    ]
    if not kept:
        return {}, 0
    y_true = np.array([t for t, _, _ in kept], dtype=object)
    y_pred = np.array([p for _, p, _ in kept], dtype=object)
    figures: Figures = {
        "accuracy": perf.accuracy(y_true, y_pred),
        "precision": perf.precision(y_true, y_pred, positive=positive),
        "recall": perf.recall(y_true, y_pred, positive=positive),
        "f1": perf.f1(y_true, y_pred, positive=positive),
    }
    auc = _class_roc_auc(y_true, [s for _, _, s in kept], positive)
    if auc is not None:
        figures["roc_auc"] = auc
    return figures, len(kept)


def _class_roc_auc(
    y_true: npt.NDArray[np.object_], scores: list[dict[str, float] | None], positive: str | None
) -> float | None:
    """One-vs-rest ROC AUC from the logged ``probabilities`` (for ``positive``, else averaged
    over the classes, as the estimation job's CBPE); None unless every row scored every class
    and each class has rows of it and not of it."""
    if any(s is None for s in scores):
        return None
    present = [s for s in scores if s is not None]
    classes = sorted(set().union(*present))
    if any(set(s) != set(classes) for s in present) or not set(y_true) <= set(classes):
        return None
    wanted = [positive] if positive is not None else classes
    if not set(wanted) <= set(classes):
        return None
    aucs = [
        perf.roc_auc(y_true == c, np.array([s[c] for s in present]), positive=True) for c in wanted
    ]
    defined = [a for a in aucs if a is not None]
    return float(np.mean(defined)) if len(defined) == len(aucs) else None


def _binary_scores(scores: npt.NDArray[np.float64], truth: list[str | None]) -> bool:
    """Every row has a label and a numeric score in [0, 1], and the label has two values at most."""
    if None in truth or np.isnan(scores).any():
        return False
    return bool(np.all((scores >= 0) & (scores <= 1))) and len(set(truth)) <= 2


def _positive(configured: object) -> str | None:
    if configured is None:
        return None
    text = str(configured)
    try:
        return class_name(float(text))
    except ValueError:
        return text


def _binary(hit: npt.NDArray[np.bool_], scores: npt.NDArray[np.float64]) -> Figures:
    predicted = scores >= THRESHOLD
    return {
        "accuracy": perf.accuracy(hit, predicted),
        "precision": perf.precision(hit, predicted, positive=True),
        "recall": perf.recall(hit, predicted, positive=True),
        "f1": perf.f1(hit, predicted, positive=True),
        "roc_auc": perf.roc_auc(hit, scores, positive=True),
        "log_loss": perf.log_loss(hit, scores, positive=True),
    }


def regression(group: Labelled, _positive_class: object) -> tuple[Figures, int]:
    both = ~np.isnan(group.label) & ~np.isnan(group.prediction)
    if not both.any():
        return {}, 0
    y_true, y_pred = group.label[both], group.prediction[both]
    return {
        "mae": perf.mae(y_true, y_pred),
        "rmse": perf.rmse(y_true, y_pred),
        "mape": perf.mape(y_true, y_pred),
    }, int(both.sum())


_TASKS: Mapping[str, Callable[[Labelled, object], tuple[Figures, int]]] = {
    "classification": classification,
    "regression": regression,
}
