"""The estimation job end to end on a real PostgreSQL: CBPE for a binary classifier, DLE for a
regressor, the band at small n, the estimate's recorded error once labels arrive."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from monitor.catalogue import (
    ESTIMATED_PERFORMANCE,
    ESTIMATED_PERFORMANCE_ERROR,
    ESTIMATED_PERFORMANCE_LOWER,
    ESTIMATED_PERFORMANCE_UPPER,
    PERFORMANCE_FLOOR,
    WINDOW_SAMPLES,
)
from monitor.ingest.schema import NUMERIC, Feature, FeatureSchema
from monitor.jobs import estimation
from monitor.jobs.estimation import run_estimation
from monitor.jobs.runner import run_jobs
from monitor.services import Services
from monitor.storage.models import ModelRecord
from tests.jobs.drift_data import insert_predictions, set_reference, spread, window
from tests.jobs.helpers import latest, window_end

Matrix = npt.NDArray[np.float64]


def _model(services: Services, name: str, task: str, **config: object) -> ModelRecord:
    schema = FeatureSchema((Feature("x1", NUMERIC), Feature("x2", NUMERIC)))
    record, _ = services.models.put(
        name, task=task, schema=schema, prediction_kind=None, config=config
    )
    return record


def _classifier_rows(rng: np.random.Generator, n: int, shift: float) -> tuple[Matrix, Matrix]:
    """Features and the positive-class probability; the model's score is that probability.
    ``shift`` pulls x1 towards 0, where the classes overlap and the model is less sure."""
    x = rng.normal(0.0, 1.0, (n, 2))
    x[:, 0] *= 1.0 - shift
    p = 1.0 / (1.0 + np.exp(-3.0 * x[:, 0]))
    return x, p


def _by_metric(services: Services, metric: str, version: str = "", win: str = "1h") -> dict:
    got = latest(services, [metric])
    return {dict(k[3])["metric"]: v for k, v in got.items() if k[1] == version and k[2] == win}


def _labels(services: Services, model: str, ids: Sequence[str], values: Sequence[int]) -> None:
    services.ingest.labels(
        [
            {"model": model, "prediction_id": i, "label": int(v)}
            for i, v in zip(ids, values, strict=True)
        ]
    )


def _window_rows(
    services: Services, model: ModelRecord, end: datetime, x: Matrix, score: Matrix, tag: str
) -> list[str]:
    rng = np.random.default_rng(7)
    ids = [f"{tag}{i}" for i in range(len(x))]
    insert_predictions(
        services, model, spread(end, len(x), 1.0, rng), x, prediction=score.tolist(), ids=ids
    )
    return ids


def _accuracy(score: Matrix, truth: Matrix) -> float:
    return float(np.mean((score >= 0.5) == (truth == 1)))


def test_a_shifted_window_lowers_the_estimate_and_the_band_holds_the_truth(
    services: Services,
) -> None:
    rng = np.random.default_rng(0)
    model = _model(services, "fraud", "classification", performance={"min": {"accuracy": 0.85}})
    x_ref, p_ref = _classifier_rows(rng, 5000, 0.0)
    y_ref = (rng.random(5000) < p_ref).astype(float)
    set_reference(services, model, x_ref, prediction=p_ref.tolist(), label=y_ref.tolist())
    end = window_end()
    x, p = _classifier_rows(rng, 3000, 0.7)
    truth = (rng.random(3000) < p).astype(float)
    ids = _window_rows(services, model, end, x, p, "s")

    report = run_jobs(services, "fraud", "estimation", now=end)
    assert report.failures == 0, report.table()
    value = _by_metric(services, ESTIMATED_PERFORMANCE.result)
    lower = _by_metric(services, ESTIMATED_PERFORMANCE_LOWER.result)
    upper = _by_metric(services, ESTIMATED_PERFORMANCE_UPPER.result)
    assert set(value) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    reference_accuracy = _accuracy(p_ref, y_ref)  # about 0.86
    realized = _accuracy(p, truth)  # about 0.65
    assert value["accuracy"] < reference_accuracy - 0.1
    assert lower["accuracy"] <= realized <= upper["accuracy"]
    assert upper["accuracy"] < 0.85  # below the floor: the alert's condition
    assert _by_metric(services, PERFORMANCE_FLOOR.result) == {"accuracy": 0.85}
    assert _by_metric(services, WINDOW_SAMPLES.result)["estimated_performance"] == 3000
    assert _by_metric(services, ESTIMATED_PERFORMANCE_ERROR.result) == {}  # no labels yet

    # the labels arrive: the estimate's error on the same rows is recorded, and small
    _labels(services, "fraud", ids, truth.astype(int).tolist())
    assert run_jobs(services, "fraud", "estimation", now=end).failures == 0
    errors = _by_metric(services, ESTIMATED_PERFORMANCE_ERROR.result)
    assert set(errors) == set(value)
    sd = (upper["accuracy"] - lower["accuracy"]) / 6
    assert abs(errors["accuracy"] - (realized - value["accuracy"])) < 1e-9
    assert abs(errors["accuracy"]) < 3 * sd


def test_a_rerun_of_the_same_window_gives_the_same_figures_without_refitting(
    services: Services,
) -> None:
    rng = np.random.default_rng(3)
    model = _model(services, "m", "classification")
    x_ref, p_ref = _classifier_rows(rng, 2000, 0.0)
    y_ref = (rng.random(2000) < p_ref).astype(float)
    set_reference(services, model, x_ref, prediction=p_ref.tolist(), label=y_ref.tolist())
    end = window_end()
    x, p = _classifier_rows(rng, 1500, 0.0)
    _window_rows(services, model, end, x, p, "r")
    first = run_estimation(services.context, model, window("1h", end))
    hits = estimation._fitted.cache_info().hits
    again = run_estimation(services.context, model, window("1h", end))
    assert [(r.metric, r.labels, r.value) for r in first] == [
        (r.metric, r.labels, r.value) for r in again
    ]
    assert estimation._fitted.cache_info().hits == hits + 1


def test_stable_data_at_small_n_stays_within_band_without_alarm(services: Services) -> None:
    """60-row windows of the reference's distribution: the band covers the realized accuracy
    and its upper end stays above a floor just under the reference's accuracy."""
    rng = np.random.default_rng(11)
    model = _model(services, "small", "classification", performance={"min": {"accuracy": 0.8}})
    x_ref, p_ref = _classifier_rows(rng, 3000, 0.0)
    y_ref = (rng.random(3000) < p_ref).astype(float)
    set_reference(services, model, x_ref, prediction=p_ref.tolist(), label=y_ref.tolist())
    end = window_end()
    x, p = _classifier_rows(rng, 60, 0.0)
    truth = (rng.random(60) < p).astype(float)
    _window_rows(services, model, end, x, p, "t")
    assert run_jobs(services, "small", "estimation", now=end).failures == 0
    lower = _by_metric(services, ESTIMATED_PERFORMANCE_LOWER.result)
    upper = _by_metric(services, ESTIMATED_PERFORMANCE_UPPER.result)
    assert lower["accuracy"] <= _accuracy(p, truth) <= upper["accuracy"]
    assert upper["accuracy"] >= 0.8
    assert upper["accuracy"] - lower["accuracy"] > 0.15  # 60 rows cannot pin it down


def test_band_coverage_and_no_false_alarm_over_many_small_windows() -> None:
    """Without PostgreSQL: 300 stable 60-row windows scored by the fitted estimator. The 3-sd
    band must hold the realized accuracy nearly always, and never sit below the floor."""
    from monitor.jobs.estimators import PositiveClass, fit_binary
    from monitor.storage.rowsample import RowSample

    def sample(x: Matrix, p: Matrix, y: Matrix) -> RowSample:
        nan = np.full(len(p), np.nan)
        return RowSample(x, ("x1", "x2"), (False, False), p, nan, y, nan, len(p))

    rng = np.random.default_rng(5)
    x_ref, p_ref = _classifier_rows(rng, 3000, 0.0)
    y_ref = (rng.random(3000) < p_ref).astype(float)
    estimator = fit_binary(sample(x_ref, p_ref, y_ref), PositiveClass(1.0, -1.0))
    assert estimator is not None
    floor = _accuracy(p_ref, y_ref) - 0.05
    covered = alarms = 0
    for _ in range(300):
        x, p = _classifier_rows(rng, 60, 0.0)
        y = (rng.random(60) < p).astype(float)
        band = estimator.estimate(sample(x, p, np.full(60, np.nan)))["accuracy"]
        covered += band.lower <= _accuracy(p, y) <= band.upper
        alarms += band.upper < floor
    assert covered >= 0.97 * 300
    assert alarms == 0


def _regression_rows(rng: np.random.Generator, n: int, x2_scale: float) -> tuple[Matrix, Matrix]:
    """The model predicts x1; its error grows with |x2| (so DLE has something to learn)."""
    x = rng.normal(0.0, 1.0, (n, 2))
    x[:, 1] *= x2_scale
    y = x[:, 0] + rng.normal(0.0, 1.0, n) * (0.2 + np.abs(x[:, 1]))
    return x, y


def test_dle_estimates_mae_and_rmse_of_a_regressor(services: Services) -> None:
    rng = np.random.default_rng(2)
    model = _model(services, "price", "regression", performance={"max": {"mae": 1.0}})
    x_ref, y_ref = _regression_rows(rng, 4000, 1.0)
    set_reference(services, model, x_ref, prediction=x_ref[:, 0].tolist(), label=y_ref.tolist())
    end = window_end()
    x, y = _regression_rows(rng, 2000, 2.0)  # wider x2: bigger errors
    _window_rows(services, model, end, x, x[:, 0], "g")
    assert run_jobs(services, "price", "estimation", now=end).failures == 0

    value = _by_metric(services, ESTIMATED_PERFORMANCE.result)
    lower = _by_metric(services, ESTIMATED_PERFORMANCE_LOWER.result)
    upper = _by_metric(services, ESTIMATED_PERFORMANCE_UPPER.result)
    realized_mae = float(np.mean(np.abs(y - x[:, 0])))
    reference_mae = float(np.mean(np.abs(y_ref - x_ref[:, 0])))
    assert set(value) == {"mae", "rmse"}
    assert value["mae"] > reference_mae * 1.4
    assert value["mae"] == pytest.approx(realized_mae, rel=0.1)
    assert lower["mae"] <= value["mae"] <= upper["mae"]
    assert lower["rmse"] <= value["rmse"] <= upper["rmse"]
    ceilings = _by_metric(services, estimation.PERFORMANCE_CEILING.result)
    assert ceilings == {"mae": 1.0}


def test_models_without_a_usable_reference_get_no_estimate(services: Services) -> None:
    rng = np.random.default_rng(4)
    model = _model(services, "nolabels", "classification", performance={"min": {"f1": 0.5}})
    x_ref, p_ref = _classifier_rows(rng, 500, 0.0)
    set_reference(services, model, x_ref, prediction=p_ref.tolist())  # no labels
    end = window_end()
    _window_rows(services, model, end, *_classifier_rows(rng, 100, 0.0), "n")
    results = run_estimation(services.context, model, window("1h", end))
    assert [(r.metric, r.labels, r.value) for r in results] == [
        (PERFORMANCE_FLOOR.result, {"metric": "f1"}, 0.5)
    ]
    off = _model(services, "off", "classification", performance={"estimate": False})
    set_reference(services, off, x_ref, prediction=p_ref.tolist(), label=[1.0] * 500)
    assert run_estimation(services.context, off, window("1h", end)) == []


def test_metrics_endpoint_exports_estimate_band_floor_and_samples(
    services: Services, client: TestClient
) -> None:
    rng = np.random.default_rng(9)
    model = _model(services, "exp", "classification", performance={"min": {"accuracy": 0.7}})
    x_ref, p_ref = _classifier_rows(rng, 1000, 0.0)
    y_ref = (rng.random(1000) < p_ref).astype(float)
    set_reference(services, model, x_ref, prediction=p_ref.tolist(), label=y_ref.tolist())
    end = window_end()
    _window_rows(services, model, end, *_classifier_rows(rng, 200, 0.0), "e")
    assert run_jobs(services, "exp", "estimation", now=end).failures == 0

    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    base = {"model": "exp", "model_version": "", "window": "1h", "metric": "accuracy"}

    def value(name: str, labels: dict[str, str]) -> float:
        (got,) = [s.value for s in families[name].samples if s.labels == labels]
        return float(got)

    estimate = value(str(ESTIMATED_PERFORMANCE), base)
    assert value(str(ESTIMATED_PERFORMANCE_LOWER), base) < estimate
    assert estimate < value(str(ESTIMATED_PERFORMANCE_UPPER), base)
    assert value(str(PERFORMANCE_FLOOR), base) == 0.7
    samples = {**base, "metric": "estimated_performance"}
    assert value(str(WINDOW_SAMPLES), samples) == 200
    assert families[str(ESTIMATED_PERFORMANCE)].type == "gauge"


def test_dle_learns_from_a_categorical_feature_and_ignores_unseen_categories() -> None:
    """The error is large in category B only: a window with more B rows has a larger
    estimated MAE; a category the reference never saw counts as missing, not as a code."""
    from monitor.jobs.estimators import CategoryCodes, fit_regression
    from monitor.storage.rowsample import RowSample

    def sample(rng: np.random.Generator, n: int, share_b: float) -> tuple[RowSample, Matrix]:
        x1 = rng.normal(size=n)
        is_b = rng.random(n) < share_b
        codes = np.where(is_b, 1234567.0, -7654321.0)  # hashtext codes of "B" and "A"
        y = x1 + rng.normal(size=n) * np.where(is_b, 2.0, 0.1)
        nan = np.full(n, np.nan)
        rows = RowSample(
            np.column_stack([x1, codes]), ("x1", "c"), (False, True), x1, nan, y, nan, n
        )
        return rows, y

    rng = np.random.default_rng(6)
    reference, _ = sample(rng, 4000, 0.5)
    dle = fit_regression(reference)
    assert dle is not None
    calm, y_calm = sample(rng, 3000, 0.1)
    rough, y_rough = sample(rng, 3000, 0.9)
    calm_mae = dle.estimate(calm)["mae"].value
    rough_mae = dle.estimate(rough)["mae"].value
    assert calm_mae == pytest.approx(float(np.mean(np.abs(y_calm - calm.prediction))), rel=0.15)
    assert rough_mae == pytest.approx(float(np.mean(np.abs(y_rough - rough.prediction))), rel=0.15)
    assert rough_mae > 3 * calm_mae
    codes = CategoryCodes.of(np.array([5.0, 5.0, 9.0, np.nan]))
    np.testing.assert_array_equal(
        codes(np.array([9.0, 5.0, 7.0, np.nan])), [1.0, 0.0, np.nan, np.nan]
    )


def test_segments_get_their_own_estimate_and_the_unsure_one_is_lower(
    services: Services,
) -> None:
    """``segments: [country]``: in DE the model's feature moved towards the boundary (it is
    right less often there); the other countries are as in the reference. 12 countries with
    ``segment_top_k: 3`` give three named segments and ``__other__``."""
    from monitor.catalogue import (
        SEGMENT_ESTIMATED_PERFORMANCE,
        SEGMENT_ESTIMATED_PERFORMANCE_LOWER,
        SEGMENT_ESTIMATED_PERFORMANCE_UPPER,
    )
    from monitor.ingest.schema import CATEGORICAL

    rng = np.random.default_rng(8)
    schema = FeatureSchema((Feature("x1", NUMERIC), Feature("country", CATEGORICAL)))
    config = {"segments": ["country"], "segment_top_k": 3}
    services.models.put(
        "shop", task="classification", schema=schema, prediction_kind=None, config=config
    )
    countries = np.array(["DE", "FR", "US", *[f"c{i}" for i in range(9)]])
    weights = np.array([0.3, 0.25, 0.2, *[0.25 / 9] * 9])

    def rows(n: int, unsure_de: bool) -> tuple[Matrix, npt.NDArray[np.str_], Matrix]:
        country = countries[rng.choice(len(countries), n, p=weights)]
        x = rng.normal(0.0, 1.0, n)
        if unsure_de:
            x[country == "DE"] *= 0.2
        return x, country, 1.0 / (1.0 + np.exp(-3.0 * x))

    x, country, p = rows(6000, False)
    y = (rng.random(6000) < p).astype(int)
    reference = [
        {"x1": float(a), "country": str(c), "prediction": float(s), "label": int(t)}
        for a, c, s, t in zip(x, country, p, y, strict=True)
    ]
    services.references.upload("shop", "", [reference])
    end = window_end()
    x, country, p = rows(4000, True)
    truth = (rng.random(4000) < p).astype(int)
    start = end - timedelta(minutes=50)
    services.ingest.predictions(
        [
            {
                "model": "shop",
                "timestamp": (start + timedelta(seconds=i // 2)).isoformat(),
                "features": {"x1": float(a), "country": str(c)},
                "prediction": float(s),
            }
            for i, (a, c, s) in enumerate(zip(x, country, p, strict=True))
        ]
    )
    assert run_jobs(services, "shop", "estimation", now=end).failures == 0

    def by_segment(metric: str) -> dict[str, float]:
        got = latest(services, [metric])
        return {
            dict(k[3])["segment"]: v
            for k, v in got.items()
            if k[2] == "1h" and dict(k[3])["metric"] == "accuracy"
        }

    value = by_segment(SEGMENT_ESTIMATED_PERFORMANCE.result)
    lower = by_segment(SEGMENT_ESTIMATED_PERFORMANCE_LOWER.result)
    upper = by_segment(SEGMENT_ESTIMATED_PERFORMANCE_UPPER.result)
    assert set(value) == {"country=DE", "country=FR", "country=US", "country=__other__"}
    assert value["country=DE"] < min(value["country=FR"], value["country=US"]) - 0.15
    for name in ("DE", "FR", "US"):
        rows_in = country == name
        realized = float(np.mean((p[rows_in] >= 0.5) == (truth[rows_in] == 1)))
        assert lower[f"country={name}"] <= realized <= upper[f"country={name}"], name
    whole = _by_metric(services, ESTIMATED_PERFORMANCE.result, win="1h")["accuracy"]
    assert value["country=DE"] < whole < value["country=FR"]
