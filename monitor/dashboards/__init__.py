"""Grafana dashboards built with grafana-foundation-sdk: overview, model, serving & versions,
cost and GPU. ``render_all`` writes them (and Grafana's file provisioning) to ``dashboards/``.
"""

from monitor.dashboards.render import all_dashboards, dashboard_json, render_all

__all__ = ["all_dashboards", "dashboard_json", "render_all"]
