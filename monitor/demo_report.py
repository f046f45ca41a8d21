"""What ``monitor demo`` prints after its jobs ran: every figure, read back from ``/metrics``, and
where each one lives (metric name, endpoint, dashboard).

Reading ``/metrics`` rather than the database means the printout shows what Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from monitor import catalogue as c

QUANTILES = ("0.5", "0.95", "0.99")
LATENCY = str(c.PREDICTION_LATENCY_SECONDS)


@dataclass(frozen=True)
class Series:
    name: str
    labels: Mapping[str, str]
    value: float


def parse_metrics(text: str, models: Iterable[str]) -> list[Series]:
    """The ``ml_`` samples of ``models`` in a Prometheus exposition."""
    wanted = set(models)
    return [
        Series(s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(c.RESULT_PREFIX) and s.labels.get("model") in wanted
    ]


def _pick(series: Sequence[Series], name: str, window: str, **labels: str) -> list[Series]:
    return [
        s
        for s in series
        if s.name == name
        and s.labels.get("window") == window
        and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def _one(series: Sequence[Series], name: str, window: str, **labels: str) -> float | None:
    found = _pick(series, name, window, **labels)
    return found[0].value if found else None


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _groups(series: Sequence[Series], window: str) -> list[tuple[str, str, str]]:
    keys = {
        (s.labels["model"], s.labels["model_version"], s.labels.get("variant", ""))
        for s in _pick(series, LATENCY, window)
    }
    return sorted(keys)


def serving_lines(series: Sequence[Series], window: str) -> Iterator[str]:
    """p50/p95/p99, error ratio, throughput and last load time per model, version and variant."""
    yield f"  serving, last {window}"
    yield (
        f"    {'model':<8}{'version':<12}{'variant':<12}{'p50':>10}{'p95':>10}{'p99':>10}"
        f"{'errors':>9}{'pred/s':>8}{'load':>9}"
    )
    for model, version, variant in _groups(series, window):
        key = {"model": model, "model_version": version, "variant": variant}
        quantiles = [_one(series, LATENCY, window, quantile=q, **key) for q in QUANTILES]
        errors = _one(series, str(c.PREDICTION_ERROR_RATIO), window, **key)
        rate = _one(series, str(c.PREDICTIONS_PER_SECOND), window, **key)
        load = _one(series, str(c.MODEL_LOAD_SECONDS), window, **key)
        yield (
            f"    {model:<8}{version:<12}{variant:<12}"
            + "".join(f"{_ms(q):>10}" for q in quantiles)
            + f"{'-' if errors is None else f'{errors:.1%}':>9}"
            + f"{'-' if rate is None else f'{rate:.2f}':>8}"
            + f"{'-' if load is None else f'{load:.1f} s':>9}"
        )


def cost_lines(series: Sequence[Series], window: str) -> Iterator[str]:
    found = _pick(series, str(c.COST_PER_MILLION_PREDICTIONS), window)
    yield f"  cost per 1M predictions, last {window}"
    for s in sorted(found, key=lambda s: (s.labels["model"], s.labels["model_version"])):
        version = s.labels["model_version"] or "(all versions)"
        currency = s.labels.get("currency", "")
        yield f"    {s.labels['model']:<8}{version:<16}{s.value:,.2f} {currency}"
    if not found:
        yield "    none yet (no cost configuration or no traffic)"


def prediction_drift_lines(series: Sequence[Series], window: str) -> Iterator[str]:
    found = _pick(series, str(c.PREDICTION_DRIFT_SCORE), window)
    yield f"  prediction drift, last {window}"
    for s in sorted(found, key=lambda s: (s.labels["model"], s.labels["model_version"])):
        yield (
            f"    {s.labels['model']:<8}{s.labels['model_version']:<12}"
            f"{s.labels.get('method', ''):<14}{s.value:.3f}"
        )
    if not found:
        yield "    none (a reference needs a 'prediction' column for this figure)"


ESTIMATED = ("accuracy", "roc_auc", "mae", "rmse")
"""The estimated metrics the demo prints (of the five CBPE and two DLE ones)."""


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _outside(value: float | None, lower: float | None, upper: float | None) -> bool:
    if value is None or lower is None or upper is None:
        return False
    return not lower <= value <= upper


def estimation_lines(series: Sequence[Series], window: str) -> Iterator[str]:
    """Per model, version and metric: the estimate without labels, its band, and the realized
    figure from the labels that have arrived."""
    found = [
        s
        for s in _pick(series, str(c.ESTIMATED_PERFORMANCE), window)
        if s.labels.get("metric") in ESTIMATED
    ]
    yield f"  estimated performance (no labels needed: CBPE / DLE), last {window}"
    yield (
        f"    {'model':<8}{'version':<12}{'metric':<10}{'estimate':>9}{'band':>16}{'realized':>10}"
    )
    order = {m: i for i, m in enumerate(ESTIMATED)}
    for s in sorted(
        found,
        key=lambda s: (s.labels["model"], s.labels["model_version"], order[s.labels["metric"]]),
    ):
        key = {k: s.labels[k] for k in ("model", "model_version", "metric")}
        lower = _one(series, str(c.ESTIMATED_PERFORMANCE_LOWER), window, **key)
        upper = _one(series, str(c.ESTIMATED_PERFORMANCE_UPPER), window, **key)
        realized = _one(series, str(c.MODEL_PERFORMANCE), window, **key)
        band = f"{_figure(lower)}-{_figure(upper)}"
        yield (
            f"    {key['model']:<8}{key['model_version']:<12}{key['metric']:<10}"
            f"{s.value:>9.3f}{band:>16}{_figure(realized):>10}"
            + ("  <- realized outside the band" if _outside(realized, lower, upper) else "")
        )
    if not found:
        yield "    none (a reference needs 'prediction' and 'label' columns for this figure)"


def multivariate_lines(series: Sequence[Series], window: str) -> Iterator[str]:
    """Per model, version and method: the multivariate drift score against its threshold."""
    found = _pick(series, str(c.MULTIVARIATE_DRIFT_SCORE), window)
    yield f"  multivariate drift (the features together), last {window}"
    for s in sorted(
        found,
        key=lambda s: (s.labels["model"], s.labels["model_version"], s.labels["method"]),
    ):
        key = {k: s.labels[k] for k in ("model", "model_version", "method")}
        threshold = _one(series, str(c.MULTIVARIATE_DRIFT_THRESHOLD), window, **key)
        detected = _one(series, str(c.MULTIVARIATE_DRIFT_DETECTED), window, **key)
        flag = "DRIFT" if detected == 1 else "  -  " if detected == 0 else "  ?  "
        yield (
            f"    {flag} {key['model']:<8}{key['model_version']:<12}{key['method']:<20}"
            f"{s.value:.3f} (threshold {_figure(threshold)})"
        )
    if not found:
        yield "    none yet (needs a reference and enough rows in the window)"


WHERE = (
    (
        "feature drift",
        f"{c.FEATURE_DRIFT_SCORE} / _detected, {c.DATASET_DRIFT_SHARE}",
        "ML model: drift, quality, performance",
    ),
    ("prediction drift", str(c.PREDICTION_DRIFT_SCORE), "ML model: drift, quality, performance"),
    (
        "estimated perf.",
        f"{c.ESTIMATED_PERFORMANCE}{{metric}} / _lower / _upper",
        "ML model: drift, quality, performance",
    ),
    (
        "multivariate drift",
        f"{c.MULTIVARIATE_DRIFT_SCORE}{{method}} / _detected",
        "ML model: drift, quality, performance",
    ),
    ("latency p50/p95/p99", f"{c.PREDICTION_LATENCY_SECONDS}{{quantile}}", "ML serving & versions"),
    ("error ratio", str(c.PREDICTION_ERROR_RATIO), "ML serving & versions"),
    ("throughput", str(c.PREDICTIONS_PER_SECOND), "ML serving & versions"),
    ("model load time", str(c.MODEL_LOAD_SECONDS), "ML serving & versions"),
    ("cost per 1M", f"{c.COST_PER_MILLION_PREDICTIONS}{{currency}}", "ML cost"),
)


def where_lines(base: str, model: str) -> Iterator[str]:
    yield "  where each figure lives (metric at /metrics; Grafana dashboard in dashboards/)"
    for what, metric, dashboard in WHERE:
        yield f"    {what:<21}{metric:<62}{dashboard}"
    yield f"    {'status page':<21}{base}/"
    yield f"    {'all, Prometheus':<21}{base}/metrics"
    yield f"    {'one model, JSON':<21}{base}/v1/models/{model}"
    yield f"    {'drift, JSON':<21}{base}/v1/models/{model}/drift?window=1h"
    yield f"    {'drift, HTML report':<21}{base}/v1/models/{model}/report?window=1h"
    yield f"    {'API docs':<21}{base}/docs"


def figures(text: str, models: Sequence[str], window: str, base: str) -> list[str]:
    """The demo's printout of serving, cost, prediction drift, estimated performance and
    multivariate drift, then where to find them."""
    series = parse_metrics(text, models)
    lines = [*serving_lines(series, window), ""]
    lines += [*cost_lines(series, window), ""]
    lines += [*prediction_drift_lines(series, window), ""]
    lines += [*estimation_lines(series, window), ""]
    lines += [*multivariate_lines(series, window), ""]
    lines += list(where_lines(base, models[0]))
    return lines
