"""What ``monitor demo`` prints after its jobs ran: every figure, read back from ``/metrics``, and
where each one lives (metric name, endpoint, dashboard).

Reading ``/metrics`` rather than the database means the printout shows what Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

QUANTILES = ("0.5", "0.95", "0.99")


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
        if s.name.startswith("ml_") and s.labels.get("model") in wanted
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
        for s in _pick(series, "ml_prediction_latency_seconds", window)
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
        quantiles = [
            _one(series, "ml_prediction_latency_seconds", window, quantile=q, **key)
            for q in QUANTILES
        ]
        errors = _one(series, "ml_prediction_error_ratio", window, **key)
        rate = _one(series, "ml_predictions_per_second", window, **key)
        load = _one(series, "ml_model_load_seconds", window, **key)
        yield (
            f"    {model:<8}{version:<12}{variant:<12}"
            + "".join(f"{_ms(q):>10}" for q in quantiles)
            + f"{'-' if errors is None else f'{errors:.1%}':>9}"
            + f"{'-' if rate is None else f'{rate:.2f}':>8}"
            + f"{'-' if load is None else f'{load:.1f} s':>9}"
        )


def cost_lines(series: Sequence[Series], window: str) -> Iterator[str]:
    found = _pick(series, "ml_cost_per_million_predictions", window)
    yield f"  cost per 1M predictions, last {window}"
    for s in sorted(found, key=lambda s: (s.labels["model"], s.labels["model_version"])):
        version = s.labels["model_version"] or "(all versions)"
        currency = s.labels.get("currency", "")
        yield f"    {s.labels['model']:<8}{version:<16}{s.value:,.2f} {currency}"
    if not found:
        yield "    none yet (no cost configuration or no traffic)"


def prediction_drift_lines(series: Sequence[Series], window: str) -> Iterator[str]:
    found = _pick(series, "ml_prediction_drift_score", window)
    yield f"  prediction drift, last {window}"
    for s in sorted(found, key=lambda s: (s.labels["model"], s.labels["model_version"])):
        yield (
            f"    {s.labels['model']:<8}{s.labels['model_version']:<12}"
            f"{s.labels.get('method', ''):<14}{s.value:.3f}"
        )
    if not found:
        yield "    none (a reference needs a 'prediction' column for this figure)"


WHERE = (
    ("feature drift", "ml_feature_drift_score / _detected, ml_dataset_drift_share", "ML model"),
    ("prediction drift", "ml_prediction_drift_score", "ML model"),
    ("latency p50/p95/p99", "ml_prediction_latency_seconds{quantile}", "ML serving & versions"),
    ("error ratio", "ml_prediction_error_ratio", "ML serving & versions"),
    ("throughput", "ml_predictions_per_second", "ML serving & versions"),
    ("model load time", "ml_model_load_seconds", "ML serving & versions"),
    ("cost per 1M", "ml_cost_per_million_predictions{currency}", "ML cost"),
)


def where_lines(base: str, model: str) -> Iterator[str]:
    yield "  where each figure lives (metric at /metrics; Grafana dashboard in dashboards/)"
    for what, metric, dashboard in WHERE:
        yield f"    {what:<20}{metric:<60}{dashboard}"
    yield f"    status page         {base}/"
    yield f"    all, Prometheus     {base}/metrics"
    yield f"    one model, JSON     {base}/v1/models/{model}"
    yield f"    drift, JSON         {base}/v1/models/{model}/drift?window=1h"
    yield f"    drift, HTML report  {base}/v1/models/{model}/report?window=1h"
    yield f"    API docs            {base}/docs"


def figures(text: str, models: Sequence[str], window: str, base: str) -> list[str]:
    """The demo's printout of serving, cost and prediction drift, then where to find them."""
    series = parse_metrics(text, models)
    lines = [*serving_lines(series, window), ""]
    lines += [*cost_lines(series, window), ""]
    lines += [*prediction_drift_lines(series, window), ""]
    lines += list(where_lines(base, models[0]))
    return lines
