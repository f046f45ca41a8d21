"""Evidently HTML data-drift reports: a bounded random sample of a window against the reference.

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
from monitor.runtime import database_url
from monitor.services import Services, build_services
from monitor.storage.models import ModelRecord
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
    return html


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
