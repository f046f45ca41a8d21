"""The performance job against hand-computed answers, with scikit-learn as a second oracle."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sklearn import metrics as skm

from monitor.jobs.runner import run_jobs
from monitor.services import Services
from tests.jobs.helpers import at, configure, labels, latest, predictions, window_end

Y_TRUE = [1, 0, 1, 1, 0, 0, 1, 0]
SCORES = [0.9, 0.2, 0.4, 0.8, 0.6, 0.1, 0.7, 0.3]


def _performance(services: Services, window: str = "1h") -> dict[str, float | None]:
    got = latest(services, ["model_performance", "window_samples"])
    return {dict(k[3])["metric"]: v for k, v in got.items() if k[2] == window}


def _labelled(
    services: Services, model: str, truth: Sequence[object], preds: Sequence[object]
) -> None:
    end = window_end()
    predictions(
        services,
        model,
        [
            {"prediction_id": f"{model}-{i}", "timestamp": at(end, 5 + i), "prediction": p}
            for i, p in enumerate(preds)
        ],
    )
    services.ingest.labels(
        [{"model": model, "prediction_id": f"{model}-{i}", "label": t} for i, t in enumerate(truth)]
    )


def test_binary_scores_give_known_classification_metrics(services: Services) -> None:
    configure(services, "fraud", task="classification")
    _labelled(services, "fraud", [bool(t) for t in Y_TRUE], SCORES)
    end = window_end()
    # not labelled: ignored; labelled but 2h old: only in the 24h window
    predictions(
        services,
        "fraud",
        [
            {"prediction_id": "unlabelled", "timestamp": at(end, 3), "prediction": 0.99},
            {"prediction_id": "old", "timestamp": at(end, 120), "prediction": 0.9},
        ],
    )
    services.ingest.labels([{"model": "fraud", "prediction_id": "old", "label": 0}])
    report = run_jobs(services, "fraud", "performance", now=end)
    assert report.failures == 0, report.table()

    got = _performance(services)
    # TP 3, FN 1, FP 1, TN 3 at threshold 0.5; 15 of 16 positive/negative pairs ranked right
    assert got["performance"] == 8
    assert got["accuracy"] == pytest.approx(0.75)
    assert got["precision"] == pytest.approx(0.75)
    assert got["recall"] == pytest.approx(0.75)
    assert got["f1"] == pytest.approx(0.75)
    assert got["roc_auc"] == pytest.approx(15 / 16)
    assert got["log_loss"] == pytest.approx(skm.log_loss(Y_TRUE, SCORES))
    assert _performance(services, "24h")["performance"] == 9


def test_configured_positive_class_and_text_predictions_match_sklearn(
    services: Services,
) -> None:
    truth = ["cat", "dog", "cat", "bird", "dog", "cat", "cat", "bird"]
    preds = ["cat", "cat", "dog", "bird", "dog", "cat", "bird", "bird"]
    configure(services, "pets", task="classification", positive_class="cat")
    _labelled(services, "pets", truth, preds)
    assert run_jobs(services, "pets", "performance", now=window_end()).failures == 0

    got = _performance(services)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, preds))
    for name, fn in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        assert got[name] == pytest.approx(fn(truth, preds, labels=["cat"], average="macro"))
    assert "roc_auc" not in got


def test_text_labels_against_scores_use_the_positive_class(services: Services) -> None:
    truth = ["fraud" if t else "legit" for t in Y_TRUE]
    configure(services, "cards", task="classification", positive_class="fraud")
    _labelled(services, "cards", truth, SCORES)
    assert run_jobs(services, "cards", "performance", now=window_end()).failures == 0
    got = _performance(services)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(Y_TRUE, SCORES))
    assert got["f1"] == pytest.approx(0.75)


def test_regression_metrics(services: Services) -> None:
    truth, preds = [3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0]
    configure(services, "price", task="regression")
    _labelled(services, "price", truth, preds)
    assert run_jobs(services, "price", "performance", now=window_end()).failures == 0

    got = _performance(services)
    assert got["mae"] == pytest.approx(0.5)
    assert got["rmse"] == pytest.approx(0.375**0.5)
    assert got["mape"] == pytest.approx((0.5 / 3 + 1.0 + 0.0 + 1 / 7) / 4)
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(truth, preds))
    assert got["performance"] == 4
    assert ("model_performance", "", "1h", labels(metric="accuracy")) not in latest(services)


def test_no_labels_no_figures(services: Services) -> None:
    predictions(services, "fresh", [{"timestamp": at(window_end(), 5), "prediction": 0.3}])
    assert run_jobs(services, "fresh", "performance", now=window_end()).failures == 0
    assert latest(services) == {}
