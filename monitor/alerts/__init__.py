"""Prometheus alerting: recording and alert rules with their promtool tests, the Alertmanager
routing, and the Prometheus configuration docker-compose runs. ``render_all`` writes ``alerts/``.
"""

from monitor.alerts.render import render_all

__all__ = ["render_all"]
