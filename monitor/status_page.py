"""The status page at ``/``: every model and version with its latest figures and a sparkline of
each over the last day, for the user who has no Grafana yet. Server-rendered HTML with inline
CSS and SVG: no JavaScript, nothing loaded from elsewhere.

Each figure is a ``<span class="fig">`` carrying the Prometheus series it shows
(``data-metric``, ``data-labels``), so what the page says can be checked against ``/metrics``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from monitor import catalogue as c
from monitor.storage.history import Point
from monitor.storage.results import StoredResult

DRIFT_SHARE = c.DATASET_DRIFT_SHARE.result
PREDICTION_DRIFT = c.PREDICTION_DRIFT_SCORE.result
LATENCY = c.PREDICTION_LATENCY_SECONDS.result
ERRORS = c.PREDICTION_ERROR_RATIO.result
THROUGHPUT = c.PREDICTIONS_PER_SECOND.result
LOAD = c.MODEL_LOAD_SECONDS.result
COST = c.COST_PER_MILLION_PREDICTIONS.result
LATEST_METRICS = (DRIFT_SHARE, PREDICTION_DRIFT, LATENCY, ERRORS, THROUGHPUT, LOAD, COST)
SPARK_METRICS = LATEST_METRICS
SeriesKey = tuple[str, str, frozenset[tuple[str, str]]]  # version, metric, extra labels


@dataclass(frozen=True)
class Figure:
    metric: str  # without ml_
    labels: Mapping[str, str]  # every Prometheus label, model and window included
    value: float
    text: str
    spark: tuple[float, ...] = ()
    details: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    version: str
    variant: str
    figures: Mapping[str, Figure | None]  # column -> figure
    drift: bool | None


@dataclass(frozen=True)
class ModelView:
    name: str
    windows: tuple[str, ...]
    rows: tuple[Row, ...]
    costs: tuple[Figure, ...]


def _ratio(v: float) -> str:
    return f"{v:.1%}"


def _ms(v: float) -> str:
    return f"{v * 1000:.1f} ms"


FORMATS: dict[str, Callable[[float], str]] = {
    DRIFT_SHARE: lambda v: f"{v:.2f}",
    PREDICTION_DRIFT: lambda v: f"{v:.3f}",
    LATENCY: _ms,
    ERRORS: _ratio,
    THROUGHPUT: lambda v: f"{v:.2f}/s",
    LOAD: lambda v: f"{v:.1f} s",
    COST: lambda v: f"{v:,.2f}",
}
COLUMNS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("drift share", DRIFT_SHARE, {}),
    ("prediction drift", PREDICTION_DRIFT, {}),
    ("p50", LATENCY, {"quantile": "0.5"}),
    ("p95", LATENCY, {"quantile": "0.95"}),
    ("p99", LATENCY, {"quantile": "0.99"}),
    ("errors", ERRORS, {}),
    ("throughput", THROUGHPUT, {}),
    ("load time", LOAD, {}),
)
VERSION_LEVEL = frozenset({DRIFT_SHARE, PREDICTION_DRIFT})  # no variant label


class _Index:
    """Latest results and history of one model in one window, looked up by series."""

    def __init__(
        self, model: str, window: str, latest: Iterable[StoredResult], history: Iterable[Point]
    ) -> None:
        self.model, self.window = model, window
        self.latest: dict[SeriesKey, StoredResult] = {
            (r.model_version, r.metric, frozenset(r.labels.items())): r
            for r in latest
            if r.model == model and r.window == window and r.value is not None
        }
        self.spark: dict[SeriesKey, list[float]] = {}
        for p in history:
            key = (p.model_version, p.metric, frozenset(p.labels.items()))
            self.spark.setdefault(key, []).append(p.value)

    def figure(self, version: str, metric: str, **labels: str) -> Figure | None:
        if metric in VERSION_LEVEL:
            found = [
                r
                for (v, m, _), r in self.latest.items()
                if v == version
                and m == metric
                and all(r.labels.get(k) == x for k, x in labels.items())
            ]
            row = found[0] if found else None
        else:
            row = self.latest.get((version, metric, frozenset(labels.items())))
        if row is None or row.value is None:
            return None
        key = (version, metric, frozenset(row.labels.items()))
        full = {"model": self.model, "model_version": version, "window": self.window}
        return Figure(
            metric,
            {**full, **row.labels},
            row.value,
            FORMATS[metric](row.value),
            tuple(self.spark.get(key, ())),
            dict(row.details or {}),
        )

    def groups(self) -> list[tuple[str, str]]:
        """(version, variant) of every served group, and versions with drift but no serving."""
        served = {
            (v, dict(labels).get("variant", ""))
            for v, m, labels in self.latest
            if m in (LATENCY, ERRORS) and v
        }
        drifted = {v for v, m, _ in self.latest if m == DRIFT_SHARE}
        alone = {(v, "") for v in drifted if not any(g[0] == v for g in served)}
        return sorted(served | alone)

    def costs(self) -> list[Figure]:
        keys = sorted(k for k in self.latest if k[1] == COST)
        return [f for v, m, lbl in keys if (f := self.figure(v, m, **dict(lbl))) is not None]


def build_view(
    name: str,
    windows: Sequence[str],
    window: str,
    latest: Iterable[StoredResult],
    history: Iterable[Point],
) -> ModelView:
    index = _Index(name, window, latest, history)
    rows = []
    for version, variant in index.groups():
        served = {"variant": variant} if variant else {}
        figures = {
            column: index.figure(
                version, metric, **(extra if metric in VERSION_LEVEL else {**served, **extra})
            )
            for column, metric, extra in COLUMNS
        }
        share = figures["drift share"]
        drift = share.details.get("dataset_drift") if share else None
        rows.append(Row(version, variant, figures, drift if isinstance(drift, bool) else None))
    return ModelView(name, tuple(windows), tuple(rows), tuple(index.costs()))


# --- HTML -----------------------------------------------------------------------------------

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 6px}
nav a,.links a{margin-right:12px}table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;vertical-align:top}
th{background:#f0f0f0;font-weight:600}td.k{text-align:left;font-family:monospace}
.fig{display:block;font-variant-numeric:tabular-nums}.none{color:#aaa}
.drift{color:#fff;background:#c0392b;padding:0 4px;border-radius:3px;font-size:11px}
.ok{color:#fff;background:#27ae60;padding:0 4px;border-radius:3px;font-size:11px}
svg.spark{display:block;margin:2px 0 0 auto}.muted{color:#777}
"""


def sparkline(values: Sequence[float], width: int = 90, height: int = 20) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    points = [
        (i * step if len(values) > 1 else width / 2, height - 2 - (v - low) / span * (height - 4))
        for i, v in enumerate(values)
    ]
    title = f"last 24h: {len(values)} points, min {low:.4g}, max {high:.4g}"
    shape = (
        '<polyline fill="none" stroke="#2c6fbb" stroke-width="1.5" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        + '"/>'
        if len(points) > 1
        else f'<circle cx="{points[0][0]:.1f}" cy="{points[0][1]:.1f}" r="2" fill="#2c6fbb"/>'
    )
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img"><title>{escape(title)}</title>{shape}</svg>'
    )


def _figure(fig: Figure | None, suffix: str = "", badge: str = "") -> str:
    if fig is None:
        return '<span class="none">-</span>'
    labels = escape(json.dumps(dict(fig.labels), sort_keys=True), quote=True)
    return (
        f'<span class="fig" data-metric="{c.RESULT_PREFIX}{fig.metric}" data-labels="{labels}">'
        f"{escape(fig.text)}{escape(suffix)}</span>{badge}{sparkline(fig.spark)}"
    )


def _verdict(row: Row) -> str:
    if row.drift is None:
        return ""
    return ' <span class="drift">DRIFT</span>' if row.drift else ' <span class="ok">ok</span>'


def _row(row: Row) -> str:
    cells = []
    for column, metric, _ in COLUMNS:
        fig = row.figures[column]
        method = fig.labels.get("method", "") if fig else ""
        suffix = f" {method}" if metric == PREDICTION_DRIFT else ""
        badge = _verdict(row) if metric == DRIFT_SHARE else ""
        cells.append(f"<td>{_figure(fig, suffix, badge)}</td>")
    head = (
        f'<td class="k">{escape(row.version)}</td><td class="k">{escape(row.variant or "-")}</td>'
    )
    return f"<tr>{head}{''.join(cells)}</tr>"


def _model(view: ModelView, window: str) -> str:
    m = escape(view.name)
    links = (
        f'<a href="/v1/models/{m}/drift?window={window}">drift</a>'
        f'<a href="/v1/models/{m}/report?window={window}">report</a>'
        f'<a href="/v1/models/{m}">JSON</a>'
    )
    out = [f'<h2 id="model-{m}">{m}</h2><div class="links">{links}</div>']
    if window not in view.windows:
        out.append(
            f'<p class="muted">window {escape(window)} is not computed for this model; '
            f"its windows: {escape(', '.join(view.windows))}</p>"
        )
        return "".join(out)
    costs = "".join(
        f"<td>{_figure(c, ' ' + c.labels.get('currency', ''))}</td>" for c in view.costs
    )
    if costs:
        out.append(f"<table><tr><th>cost per 1M predictions</th>{costs}</tr></table>")
    head = "".join(f"<th>{escape(c)}</th>" for c, _, _ in COLUMNS)
    rows = "".join(_row(r) for r in view.rows) or (
        f'<tr><td colspan="{len(COLUMNS) + 2}" class="muted">'
        "no results in this window yet</td></tr>"
    )
    out.append(f"<table><tr><th>version</th><th>variant</th>{head}</tr>{rows}</table>")
    return "".join(out)


def render(views: Sequence[ModelView], window: str, windows: Sequence[str], now: datetime) -> str:
    switch = " ".join(
        f'<a href="/?window={escape(w)}">{escape(w)}</a>' if w != window else f"<b>{escape(w)}</b>"
        for w in windows
    )
    body = "".join(_model(v, window) for v in views) or (
        '<p class="muted">No models yet: send predictions to POST /v1/predictions.</p>'
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="60"><title>ml-monitor status</title>'
        f"<style>{CSS}</style></head><body><h1>ml-monitor</h1>"
        '<nav><a href="/metrics">/metrics</a><a href="/docs">/docs</a>'
        '<a href="/v1/models">/v1/models</a></nav>'
        f'<p class="muted">latest figures in window {escape(window)} (show: {switch}); '
        f"sparklines: the last 24 hours; as of {now:%Y-%m-%d %H:%M:%S} UTC</p>"
        f"{body}</body></html>"
    )
