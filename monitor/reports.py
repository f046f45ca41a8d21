"""Evidently HTML data-drift reports: a bounded random sample of a window against the reference.

After Evidently's report comes the multivariate drift section (``monitor.report_multivariate``:
the multivariate job's scores, verdicts and top features for the same window).

The drift job never needs Evidently; the report is for people. Both sides are sampled to at most
``SAMPLE_ROWS`` rows in PostgreSQL (``random() < p`` with a LIMIT), so a report costs seconds
whatever the window holds. Evidently's own verdicts on the samples can differ slightly from the
job's, which sees every row (and uses a two-sample chi-square; see monitor.stats.drift).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from monitor.config import Settings
from monitor.errors import NotFound, Problem, ValidationFailed
from monitor.jobs.base import Window
from monitor.jobs.estimation import run_estimation
from monitor.jobs.performance import run_performance
from monitor.report_multivariate import multivariate_html
from monitor.runtime import database_url
from monitor.services import Services, build_services
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.storage.samples import sample_rows
from monitor.storage.span import Span

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_ROWS = 50_000


@dataclass(frozen=True)
class Samples:
    reference: pd.DataFrame
    current: pd.DataFrame
    numeric: list[str]
    categorical: list[str]


def report_window(name: str, end: datetime | None = None) -> Window:
    """The trailing window ``name`` (e.g. 24h) ending now; 422 for a malformed name."""
    try:
        return Window.ending(name, end or datetime.now(UTC))
    except ValueError as exc:
        raise ValidationFailed(str(exc), [Problem(str(exc), field="window")]) from exc


def _frame(rows: list[Any], model: ModelRecord) -> pd.DataFrame:
    import pandas as pd  # heavy: imported on demand

    schema = model.schema
    numeric, categorical = schema.numeric_names, schema.categorical_names
    data: dict[str, list[Any]] = {name: [] for name in [*numeric, *categorical, "prediction"]}
    for num, cat, prediction, prediction_text in rows:
        num, cat = num or [], cat or []
        for i, name in enumerate(numeric):
            data[name].append(num[i] if i < len(num) else None)
        for i, name in enumerate(categorical):
            data[name].append(cat[i] if i < len(cat) else None)
        data["prediction"].append(prediction if prediction is not None else prediction_text)
    frame = pd.DataFrame(data)
    for name in numeric:
        frame[name] = pd.to_numeric(frame[name])
    return frame


def sample(
    services: Services,
    model: ModelRecord,
    window: Window,
    version: str = "",
    limit: int = SAMPLE_ROWS,
) -> Samples:
    """Random samples of the reference and of the window (at most ``limit`` rows each)."""
    span = Span(model.id, window.start, window.end)
    rows = sample_rows(services.db, span, version, limit)
    if rows is None:
        raise NotFound(f"model {model.name!r} has no reference data set; upload one first")
    ref_rows, cur_rows = rows
    if not cur_rows:
        raise NotFound(f"model {model.name!r} has no predictions in the last {window.name}")
    import pandas as pd  # heavy: imported on demand

    ref, cur = _frame(ref_rows, model), _frame(cur_rows, model)
    numeric = list(model.schema.numeric_names)
    categorical = list(model.schema.categorical_names)
    values = [*ref["prediction"].dropna(), *cur["prediction"].dropna()]
    if ref["prediction"].isna().all() or cur["prediction"].isna().all():
        ref, cur = ref.drop(columns="prediction"), cur.drop(columns="prediction")
    elif all(isinstance(v, float | int) for v in values):
        numeric.append("prediction")
        ref["prediction"] = pd.to_numeric(ref["prediction"])
        cur["prediction"] = pd.to_numeric(cur["prediction"])
    else:
        categorical.append("prediction")
    return Samples(ref, cur, numeric, categorical)


def render_report(services: Services, model: ModelRecord, window: Window, version: str = "") -> str:
    """A standalone HTML page: Evidently's data-drift preset on the samples."""
    from evidently import DataDefinition, Dataset, Report  # heavy: imported on demand
    from evidently.presets import DataDriftPreset

    samples = sample(services, model, window, version)
    definition = DataDefinition(
        numerical_columns=samples.numeric, categorical_columns=samples.categorical
    )
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(samples.current, data_definition=definition),
        Dataset.from_pandas(samples.reference, data_definition=definition),
    )
    html: str = snapshot.get_html_str(as_iframe=False)
    sections = estimated_section(services, model, window, version) + multivariate_html(
        services.db, model, window, version
    )
    return with_section(html, sections)


def write_report(
    settings: Settings, *, model: str, window: str, version: str, output: Path
) -> Path:
    """``monitor report``: render the report of ``model`` over ``window`` into ``output``."""
    span = report_window(window)
    with database_url(settings) as url:
        services = build_services(settings, url, registry=CollectorRegistry())
        try:
            html = render_report(services, services.models.require(model), span, version)
        finally:
            services.engine.dispose()
    output.write_text(html, encoding="utf-8")
    return output


# --- estimated performance ----------------------------------------------------------------------


def with_section(html: str, section: str) -> str:
    """``section`` placed at the end of the page's body."""
    at = html.lower().rfind("</body>")
    return html + section if at < 0 else html[:at] + section + html[at:]


Figures = dict[tuple[str, str, str], float]


def _figures(results: list[Result], version: str) -> Figures:
    """(version, metric result name, metric label) -> value, for ``version`` ("" = all) and the
    model-wide figures (the bounds)."""
    return {
        (r.model_version, r.metric, r.labels.get("metric", "")): r.value
        for r in results
        if r.value is not None and (not version or r.model_version in (version, ""))
    }


def _cells(figures: Figures, version: str, metric: str) -> list[str]:
    from monitor import catalogue as c

    def cell(name: str, of: str = version) -> str:
        value = figures.get((of, name, metric))
        return "" if value is None else f"{value:.4g}"

    band = f"{cell(c.ESTIMATED_PERFORMANCE_LOWER.result)} – "
    band += cell(c.ESTIMATED_PERFORMANCE_UPPER.result)
    bound = cell(c.PERFORMANCE_FLOOR.result, "") or cell(c.PERFORMANCE_CEILING.result, "")
    return [
        version or "(all)",
        metric,
        cell(c.ESTIMATED_PERFORMANCE.result),
        band,
        cell(c.MODEL_PERFORMANCE.result),
        cell(c.ESTIMATED_PERFORMANCE_ERROR.result),
        bound,
    ]


HEADERS = ("version", "metric", "estimated", "band (3 sd)", "realized", "error", "bound")


def estimated_section(
    services: Services, model: ModelRecord, window: Window, version: str = ""
) -> str:
    """An HTML table of the window's estimated performance (computed now, as the estimation
    job would), its band, the realized figure and the estimate's error where labels arrived,
    and the model's bound."""
    from html import escape

    from monitor.catalogue import ESTIMATED_PERFORMANCE

    estimated = run_estimation(services.context, model, window)
    figures = _figures(estimated + run_performance(services.context, model, window), version)
    keys = sorted((v, m) for v, name, m in figures if name == ESTIMATED_PERFORMANCE.result)
    rows = [
        "<tr>" + "".join(f"<td>{escape(x)}</td>" for x in _cells(figures, v, m)) + "</tr>"
        for v, m in keys
    ]
    head = "<tr>" + "".join(f"<th>{h}</th>" for h in HEADERS) + "</tr>"
    body = (
        f"<table>{head}{''.join(rows)}</table>"
        if rows
        else "<p>No estimate: the model needs a reference with predictions and labels "
        "(a binary classifier's scores, or a regressor's predictions).</p>"
    )
    return (
        '<section id="estimated-performance" style="font-family: sans-serif; margin: 2em">'
        f"<h2>Estimated performance ({escape(window.name)} window, without labels)</h2>"
        f"<p>CBPE / DLE on a sample of the window; realized and error from the predictions "
        f"whose labels arrived.</p>{body}</section>"
    )
