"""Small factories over grafana-foundation-sdk builders, so every panel gets a title, a unit, a
description, the datasource variable and fully specified options (the panel JSON schemas of
Grafana 11.6 require them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm

PROMETHEUS_UID = "ml-monitor-prometheus"
"""The uid `monitor grafana provision` and the file provisioning give the Prometheus datasource."""
PROMETHEUS_NAME = "Prometheus (ml-monitor)"
FOLDER_UID = "ml-monitor"

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")

Query = prometheus.Dataquery
Steps = Sequence[tuple[float | None, str]]
P = TypeVar("P", timeseries.Panel, stat.Panel, table.Panel, heatmap.Panel)


def query(
    expr: str, legend: str = "", *, instant: bool = False, table_format: bool = False
) -> Query:
    """A PromQL target; ``refId`` is assigned by the panel factories in order."""
    target = Query().expr(expr).datasource(DATASOURCE).editor_mode(pm.QueryEditorMode.CODE)
    if legend:
        target = target.legend_format(legend)
    target = target.instant() if instant else target.range()
    if table_format:
        target = target.format(pm.PromQueryFormat.TABLE)
    return target


def table_query(expr: str) -> Query:
    """An instant query in table format, for table panels."""
    return query(expr, instant=True, table_format=True)


def _with_targets(panel: P, targets: Sequence[Query]) -> P:
    for index, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + index)))
    return panel


def thresholds(steps: Steps) -> db.ThresholdsConfig:
    """``None`` marks the base step. Grafana writes it as ``null`` (-Infinity) but the 11.6
    schema wants a number; Grafana treats the first step as the base whatever its value."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=value or 0.0, color=color) for value, color in steps])
    )


GREEN = ((None, "green"),)


def _common(panel: P, title: str, description: str, unit: str, width: int, height: int) -> P:
    return (
        panel.title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(width)
        .height(height)
    )


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Query],
    *,
    width: int = 12,
    height: int = 8,
    steps: Steps = GREEN,
    threshold_line: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
) -> timeseries.Panel:
    panel = _common(timeseries.Panel(), title, description, unit, width, height)
    panel = (
        panel.legend(
            cb.VizLegendOptions()
            .display_mode(cm.LegendDisplayMode.TABLE)
            .placement(cm.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)
        )
        .thresholds(thresholds(steps))
        .line_width(1)
        .fill_opacity(10)
        .show_points(cm.VisibilityMode.NEVER)
        .span_nulls(False)
    )
    mode = cm.GraphThresholdsStyleMode.DASHED if threshold_line else cm.GraphThresholdsStyleMode.OFF
    panel = panel.thresholds_style(cb.GraphThresholdsStyleConfig().mode(mode))
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return _with_targets(panel, targets)


def stat_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Query],
    *,
    width: int = 4,
    height: int = 4,
    steps: Steps = GREEN,
    decimals: int | None = None,
) -> stat.Panel:
    panel = _common(stat.Panel(), title, description, unit, width, height)
    panel = (
        panel.graph_mode(cm.BigValueGraphMode.AREA)
        .color_mode(cm.BigValueColorMode.VALUE)
        .text_mode(cm.BigValueTextMode.AUTO)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds(steps))
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return _with_targets(panel, targets)


def table_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Query],
    *,
    columns: dict[str, str],
    colored: dict[str, Steps] | None = None,
    hidden: Sequence[str] = (),
    width: int = 24,
    height: int = 8,
    decimals: int = 3,
) -> table.Panel:
    """Instant queries merged into one row per label set. ``columns`` renames each query's value
    field (``Value #A``...); all share ``unit`` because the 11.6 schema only admits object
    override values (put the unit in the header, scale in PromQL). ``colored`` columns get a
    coloured cell from their thresholds."""
    panel = _common(table.Panel(), title, description, unit, width, height)
    panel = (
        panel.show_header(True)
        .cell_height(cm.TableCellHeight.SM)
        .align(cm.FieldTextAlignment.AUTO)
        .inspect(False)
        .decimals(decimals)
        .footer(cb.TableFooterOptions().show(False).reducer(["sum"]).count_rows(False))
        .thresholds(thresholds(GREEN))
        .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {name: True for name in ("Time", "__name__", *hidden)},
                    "renameByName": dict(columns),
                },
            )
        )
    )
    for field, steps in (colored or {}).items():
        matcher = dm.MatcherConfig(id_val="byNames", options={"mode": "include", "names": [field]})
        panel = panel.with_override(
            matcher,
            [
                dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
                dm.DynamicConfigValue(id_val="thresholds", value=thresholds(steps).build()),
            ],
        )
    return _with_targets(panel, targets)


def heatmap_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Query],
    *,
    width: int = 12,
    height: int = 8,
) -> heatmap.Panel:
    """A heatmap of ready-made rows (one series per row), not of a histogram Grafana computes."""
    panel = _common(heatmap.Panel(), title, description, unit, width, height)
    panel = (
        panel.calculate(False)
        .color(
            heatmap.HeatmapColorOptions()
            .mode(hm.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .scale(hm.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
            .fill("dark-orange")
            .reverse(False)
        )
        .rows_frame(heatmap.RowsHeatmapOptions().layout(cm.HeatmapCellLayout.UNKNOWN))
        .y_axis(heatmap.YAxisConfig().axis_placement(cm.AxisPlacement.LEFT).reverse(False))
        .cell_values(heatmap.CellValues().unit(unit))
        .show_value(cm.VisibilityMode.AUTO)
        .cell_gap(1)
        .mode(cm.TooltipDisplayMode.SINGLE)
        .show_y_histogram()
        .show_legend()
        .exemplars_color("rgba(255,0,255,0.7)")
        .filter_values(heatmap.FilterValueRange().le(-1e-9))
    )
    return _with_targets(panel, targets)


def row(title: str) -> db.Row:
    return db.Row(title)


def datasource_variable() -> db.DatasourceVariable:
    return (
        db.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(dm.VariableOption(text=PROMETHEUS_NAME, value=PROMETHEUS_UID))
    )


def query_variable(
    name: str, label: str, promql: str, *, multi: bool = False, regex: str = ""
) -> db.QueryVariable:
    """A variable filled from Prometheus; multi-value ones offer "All" as the regex ``.*``."""
    variable = (
        db.QueryVariable(name)
        .label(label)
        .query(promql)
        .datasource(DATASOURCE)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.NATURAL_ASC)
    )
    if regex:
        variable = variable.regex(regex)
    if multi:
        variable = variable.multi(True).include_all(True).all_value(".*")
    return variable


def annotation(name: str, expr: str, color: str) -> db.AnnotationQuery:
    return (
        db.AnnotationQuery()
        .name(name)
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color(color)
        .expr(expr)
    )


def new_dashboard(uid: str, title: str, description: str) -> db.Dashboard:
    """A dashboard with the house settings: datasource variable, links to its siblings."""
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["ml-monitor"])
        .editable()
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .link(
            db.DashboardLink("ml-monitor")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["ml-monitor"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(datasource_variable())
        .annotation(
            # Grafana's own annotations and alert state changes, as on any new dashboard.
            db.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
            .built_in(1)
        )
    )
