"""Multiclass CBPE: a classifier that logs its score of every class (``probabilities``).

Known answers: with calibrated scores the estimate is the expected figure of the window, so
over many windows of labels drawn from the scores the realized accuracy and macro F1 sit in the
band, and the estimate follows a window where the model is less sure. End to end on
PostgreSQL the scores go in through the real ingest and reference paths and come out as
``ml_estimated_performance`` with the estimate's error once labels arrive.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import roc_auc_score

from monitor.catalogue import (
    ESTIMATED_PERFORMANCE,
    ESTIMATED_PERFORMANCE_ERROR,
    ESTIMATED_PERFORMANCE_LOWER,
    ESTIMATED_PERFORMANCE_UPPER,
    MODEL_PERFORMANCE,
)
from monitor.ingest.schema import NUMERIC, Feature, FeatureSchema
from monitor.jobs.multiclass import ClassNames, MulticlassCbpe, fit_multiclass
from monitor.jobs.runner import run_jobs
from monitor.services import Services
from monitor.stats.estimation import confusion_metrics, counted_confusion
from monitor.storage.rowsample import RowSample
from tests.jobs.helpers import latest, window_end

Matrix = npt.NDArray[np.float64]
NAMES = ("bird", "cat", "dog")
CODES = (11.0, 22.0, 33.0)  # stand-ins for hashtext codes of the names
CLASSES = ClassNames.of(NAMES, CODES)


def _scores(rng: np.random.Generator, n: int, sureness: float) -> Matrix:
    """Softmax scores of three classes; lower ``sureness`` = flatter scores."""
    logits = rng.normal(0.0, 1.0, (n, 3)) * sureness + np.array([0.3, 0.0, -0.2])
    e = np.exp(logits)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _draw(rng: np.random.Generator, p: Matrix) -> npt.NDArray[np.int64]:
    u = rng.random(p.shape[0])[:, None]
    return np.asarray((u >= np.cumsum(p, axis=1)[:, :-1]).sum(axis=1), dtype=np.int64)


def _sample(p: Matrix, labels: npt.NDArray[np.int64] | None, *, stated: bool = True) -> RowSample:
    n = p.shape[0]
    nan = np.full(n, np.nan)
    codes = np.array(CODES)
    predicted = codes[np.argmax(p, axis=1)] if stated else nan
    label_code = nan if labels is None else codes[labels]
    return RowSample(
        np.zeros((n, 1)), ("x",), (False,), nan, predicted, nan, label_code, n, p, NAMES
    )


def _fitted(rng: np.random.Generator, sureness: float = 2.0) -> MulticlassCbpe:
    p = _scores(rng, 6000, sureness)
    estimator = fit_multiclass(_sample(p, _draw(rng, p)), CLASSES, None)
    assert estimator is not None
    return estimator


def _realized(p: Matrix, labels: npt.NDArray[np.int64]) -> dict[str, float]:
    return confusion_metrics(counted_confusion(labels, np.argmax(p, axis=1), 3), positive=None)


def test_calibrated_scores_give_the_expected_accuracy_exactly() -> None:
    """Known answer: calibrated scores, each row predicted as its top class, so the expected
    accuracy is the mean of the top score (the calibration keeps scores that are already
    probabilities as they are)."""
    rng = np.random.default_rng(0)
    estimator = _fitted(rng)
    assert not any(c.calibrated for c in estimator.calibration.classes)
    p = _scores(rng, 2000, 2.0)
    got = estimator.estimate(_sample(p, None))
    assert set(got) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert got["accuracy"].value == pytest.approx(float(p.max(axis=1).mean()), abs=1e-12)


def test_the_band_holds_the_realized_figures_of_stable_windows() -> None:
    rng = np.random.default_rng(1)
    estimator = _fitted(rng)
    covered = {"accuracy": 0, "f1": 0}
    for _ in range(60):
        p = _scores(rng, 200, 2.0)
        labels = _draw(rng, p)
        band = estimator.estimate(_sample(p, None))
        realized = _realized(p, labels)
        for name in covered:
            covered[name] += band[name].lower <= realized[name] <= band[name].upper
    assert covered["accuracy"] >= 57  # a 3-sd band: ~0.3% miss
    assert covered["f1"] >= 57


def test_a_less_sure_window_lowers_the_estimate_and_matches_its_labels() -> None:
    rng = np.random.default_rng(2)
    estimator = _fitted(rng)
    before = estimator.estimate(_sample(_scores(rng, 5000, 2.0), None))["accuracy"]
    p = _scores(rng, 5000, 0.6)
    labels = _draw(rng, p)
    after = estimator.estimate(_sample(p, None))
    realized = _realized(p, labels)
    assert after["accuracy"].value < before.value - 0.15
    for name in ("accuracy", "precision", "recall", "f1"):
        assert after[name].lower <= realized[name] <= after[name].upper, name


def test_uncalibrated_scores_are_calibrated_on_the_reference() -> None:
    """The model's scores are over-confident (sharpened); the truth follows the flat ones."""
    rng = np.random.default_rng(3)
    truth_p = _scores(rng, 8000, 1.0)
    sharp = truth_p**3 / (truth_p**3).sum(axis=1, keepdims=True)
    estimator = fit_multiclass(_sample(sharp, _draw(rng, truth_p)), CLASSES, None)
    assert estimator is not None
    assert all(c.calibrated for c in estimator.calibration.classes)
    p = _scores(rng, 4000, 1.0)
    shown = p**3 / (p**3).sum(axis=1, keepdims=True)
    got = estimator.estimate(_sample(shown, None))["accuracy"]
    realized = _realized(p, _draw(rng, p))["accuracy"]
    naive = float(shown.max(axis=1).mean())  # what trusting the raw scores would say
    assert got.lower <= realized <= got.upper
    assert naive > got.upper  # the raw scores would have overstated it


def test_rows_without_a_prediction_take_their_top_class_and_partial_rows_are_left_out() -> None:
    rng = np.random.default_rng(4)
    estimator = _fitted(rng)
    p = _scores(rng, 500, 2.0)
    stated = estimator.estimate(_sample(p, None))["accuracy"].value
    unstated = estimator.estimate(_sample(p, None, stated=False))["accuracy"].value
    assert unstated == pytest.approx(stated)
    partial = p.copy()
    partial[:100, 2] = np.nan
    assert int(estimator.usable(_sample(partial, None)).sum()) == 400


def test_a_class_too_rare_to_calibrate_gives_no_estimator() -> None:
    rng = np.random.default_rng(5)
    p = _scores(rng, 3000, 2.0)
    labels = _draw(rng, p)
    labels[labels == 2] = 1
    labels[:3] = 2  # 3 rows of "dog": too few to calibrate against
    assert fit_multiclass(_sample(p, labels), CLASSES, None) is None


def test_positive_class_picks_one_class_and_two_classes_default_to_class_1() -> None:
    assert CLASSES.positive("cat") == 1
    assert CLASSES.positive(None) is None
    assert CLASSES.positive("wolf") is None
    assert ClassNames.of(("0", "1"), (1.0, 2.0)).positive(None) == 1
    assert ClassNames.of(("no", "yes"), (1.0, 2.0)).positive(None) is None


def test_numeric_classes_match_numeric_labels() -> None:
    classes = ClassNames.of(("0", "1", "2"), (5.0, 6.0, 7.0))
    got = classes.index(np.array([2.0, 0.0, 3.0, np.nan]), np.array([np.nan, np.nan, np.nan, 6.0]))
    assert got.tolist() == [2, 0, -1, 1]


def _by_metric(services: Services, metric: str) -> dict[str, float]:
    got = latest(services, [metric])
    return {dict(k[3])["metric"]: v for k, v in got.items() if k[2] == "1h"}


def test_the_job_estimates_a_multiclass_model_from_logged_probabilities(
    services: Services,
) -> None:
    rng = np.random.default_rng(6)
    schema = FeatureSchema((Feature("x", NUMERIC),))
    services.models.put(
        "pets", task="classification", schema=schema, prediction_kind=None, config={}
    )
    p_ref = _scores(rng, 3000, 2.0)
    y_ref = _draw(rng, p_ref)

    def scores(row: Matrix) -> dict[str, float]:
        return {name: float(v) for name, v in zip(NAMES, row, strict=True)}

    reference = [
        {
            "x": float(i),
            "prediction": NAMES[int(np.argmax(p))],
            "label": NAMES[y],
            "probabilities": scores(p),
        }
        for i, (p, y) in enumerate(zip(p_ref, y_ref, strict=True))
    ]
    services.references.upload("pets", "", [reference])
    end = window_end()
    p = _scores(rng, 1500, 0.7)
    truth = _draw(rng, p)
    start: datetime = end - timedelta(minutes=50)
    records = [
        {
            "model": "pets",
            "prediction_id": f"w{i}",
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            "features": {"x": float(i)},
            "prediction": NAMES[int(np.argmax(row))],
            "probabilities": scores(row),
        }
        for i, row in enumerate(p)
    ]
    assert services.ingest.predictions(records).stored == 1500
    assert run_jobs(services, "pets", "estimation", now=end).failures == 0
    value = _by_metric(services, ESTIMATED_PERFORMANCE.result)
    lower = _by_metric(services, ESTIMATED_PERFORMANCE_LOWER.result)
    upper = _by_metric(services, ESTIMATED_PERFORMANCE_UPPER.result)
    realized = _realized(p, truth)
    assert set(value) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    for name in ("accuracy", "f1"):
        assert lower[name] <= realized[name] <= upper[name], name
    assert value["accuracy"] == pytest.approx(float(p.max(axis=1).mean()), abs=0.02)

    services.ingest.labels(
        [
            {"model": "pets", "prediction_id": f"w{i}", "label": NAMES[y]}
            for i, y in enumerate(truth)
        ]
    )
    assert run_jobs(services, "pets", "estimation", now=end).failures == 0
    errors = _by_metric(services, ESTIMATED_PERFORMANCE_ERROR.result)
    assert errors["accuracy"] == pytest.approx(realized["accuracy"] - value["accuracy"], abs=1e-9)

    # the realized figures beside it, one-vs-rest ROC AUC from the logged probabilities too
    assert run_jobs(services, "pets", "performance", now=end).failures == 0
    measured = _by_metric(services, MODEL_PERFORMANCE.result)
    assert measured["accuracy"] == pytest.approx(realized["accuracy"])
    assert measured["f1"] == pytest.approx(realized["f1"])
    expected_auc = roc_auc_score(truth, p, multi_class="ovr", average="macro")
    assert measured["roc_auc"] == pytest.approx(expected_auc, abs=1e-9)
