"""Model-quality metrics: hand-computed answers, then scikit-learn as the oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics

from monitor.stats import performance

Y_TRUE = np.array([1, 1, 1, 0, 0, 0, 0, 1])
Y_PRED = np.array([1, 1, 0, 0, 0, 1, 0, 1])  # tp 3, fn 1, fp 1, tn 3


def test_binary_classification_known_answers() -> None:
    assert performance.accuracy(Y_TRUE, Y_PRED) == 6 / 8
    assert performance.precision(Y_TRUE, Y_PRED, positive=1) == 3 / 4
    assert performance.recall(Y_TRUE, Y_PRED, positive=1) == 3 / 4
    assert performance.f1(Y_TRUE, Y_PRED, positive=1) == 3 / 4


def test_macro_averages_known_answer() -> None:
    y_true = ["a", "a", "b", "c"]
    y_pred = ["a", "b", "b", "b"]
    # precision a 1, b 1/3, c 0 (never predicted: 0/0 -> 0); recall a 1/2, b 1, c 0
    assert performance.precision(y_true, y_pred) == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert performance.recall(y_true, y_pred) == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert performance.f1(y_true, y_pred) == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)


def test_roc_auc_gives_ties_half_credit() -> None:
    # pairs (pos, neg): (0.8, 0.1) win, (0.8, 0.4) win, (0.4, 0.1) win, (0.4, 0.4) tie -> 3.5 / 4
    assert performance.roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)


def test_roc_auc_of_one_class_is_undefined() -> None:
    assert performance.roc_auc([1, 1], [0.2, 0.9]) is None


def test_log_loss_known_answer_and_clipping() -> None:
    expected = -(math.log(0.9) + math.log(0.8)) / 2
    assert performance.log_loss([1, 0], [0.9, 0.2]) == pytest.approx(expected)
    eps = np.finfo(np.float64).eps
    assert performance.log_loss([1], [0.0]) == pytest.approx(-math.log(eps))


def test_regression_known_answers() -> None:
    y_true, y_pred = [1.0, 2.0, 4.0], [2.0, 2.0, 2.0]
    assert performance.mae(y_true, y_pred) == pytest.approx(1.0)
    assert performance.rmse(y_true, y_pred) == pytest.approx(math.sqrt(5 / 3))
    assert performance.mape(y_true, y_pred) == pytest.approx((1 + 0 + 0.5) / 3)


def test_mape_leaves_out_zero_targets() -> None:
    assert performance.mape([0.0, 2.0], [5.0, 3.0]) == pytest.approx(0.5)
    assert performance.mape([0.0, 0.0], [1.0, 1.0]) is None


@pytest.mark.parametrize("seed", range(5))
def test_classification_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, 500)
    scores = np.round(np.clip(y_true * 0.3 + rng.normal(0.35, 0.25, 500), 0, 1), 2)  # many ties
    y_pred = (scores > 0.5).astype(int)
    assert performance.accuracy(y_true, y_pred) == pytest.approx(
        metrics.accuracy_score(y_true, y_pred)
    )
    for ours, theirs in [
        (performance.precision, metrics.precision_score),
        (performance.recall, metrics.recall_score),
        (performance.f1, metrics.f1_score),
    ]:
        assert ours(y_true, y_pred, positive=1) == pytest.approx(theirs(y_true, y_pred))
        assert ours(y_true, y_pred, positive=0) == pytest.approx(
            theirs(y_true, y_pred, pos_label=0)
        )
    assert performance.roc_auc(y_true, scores) == pytest.approx(
        metrics.roc_auc_score(y_true, scores)
    )
    assert performance.log_loss(y_true, scores) == pytest.approx(
        metrics.log_loss(y_true, y_proba=scores), rel=1e-12
    )


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.array(["bird", "cat", "dog", "fish"])
    y_true = rng.choice(labels, 400)
    y_pred = np.where(rng.random(400) < 0.6, y_true, rng.choice(labels[:3], 400))
    for ours, theirs in [
        (performance.precision, metrics.precision_score),
        (performance.recall, metrics.recall_score),
        (performance.f1, metrics.f1_score),
    ]:
        assert ours(y_true, y_pred) == pytest.approx(
            theirs(y_true, y_pred, average="macro", zero_division=0)
        )
    proba = rng.dirichlet(np.ones(4), 400)
    shuffled = np.array(["dog", "bird", "fish", "cat"])  # any column order, named by labels
    order = np.searchsorted(labels, shuffled)
    assert performance.log_loss_multiclass(y_true, proba[:, order], shuffled) == pytest.approx(
        metrics.log_loss(y_true, y_proba=proba, labels=labels), rel=1e-12
    )


@pytest.mark.parametrize("seed", range(5))
def test_regression_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.lognormal(3, 1, 300)
    y_pred = y_true + rng.normal(0, 5, 300)
    assert performance.mae(y_true, y_pred) == pytest.approx(
        metrics.mean_absolute_error(y_true, y_pred)
    )
    assert performance.rmse(y_true, y_pred) == pytest.approx(
        metrics.root_mean_squared_error(y_true, y_pred)
    )
    assert performance.mape(y_true, y_pred) == pytest.approx(
        metrics.mean_absolute_percentage_error(y_true, y_pred)
    )


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="labels"):
        performance.accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="labels"):
        performance.roc_auc([1, 0], [0.3])
    with pytest.raises(ValueError, match="missing"):
        performance.log_loss_multiclass(["a", "z"], [[1.0, 0.0], [0.5, 0.5]], ["a", "b"])
