"""PromQL fragments shared by the alert rules and the dashboards.

Two label quirks are smoothed over here, once:

- ``monitor_job_*`` metrics carry a ``job`` label (the scheduled job). With Prometheus' default
  ``honor_labels: false`` the scrape target's ``job`` wins and ours arrives as ``exported_job``;
  with ``honor_labels: true`` it stays ``job``. :func:`scheduler_job` works with either.
- dcgm-exporter names the host label ``Hostname`` in some versions and ``hostname`` in others.
  :func:`with_host` copies whichever is present into ``host``.
"""

from __future__ import annotations

from typing import Literal

from monitor import catalogue
from monitor.catalogue import PREDICTIONS_OVER_LATENCY_SLO_TOTAL, PREDICTIONS_TOTAL

SLI = Literal["errors", "slow"]

PERFORMANCE_HIGHER_IS_BETTER = "|".join(catalogue.PERFORMANCE_HIGHER_IS_BETTER)
PERFORMANCE_LOWER_IS_BETTER = "|".join(catalogue.PERFORMANCE_LOWER_IS_BETTER)


def selector(metric: str, *matchers: str) -> str:
    """``metric{a="b", ...}`` without empty matchers (and without ``{}`` when there are none)."""
    inner = ", ".join(m for m in matchers if m)
    return f"{metric}{{{inner}}}" if inner else metric


def scheduler_job(expr: str) -> str:
    """``expr`` with the scheduled job's name in ``job`` whatever ``honor_labels`` was."""
    return f'label_replace({expr}, "job", "$1", "exported_job", "(.+)")'


def with_host(expr: str) -> str:
    """``expr`` with a ``host`` label taken from dcgm-exporter's ``Hostname`` or ``hostname``."""
    inner = f'label_replace({expr}, "host", "$1", "Hostname", "(.+)")'
    return f'label_replace({inner}, "host", "$1", "hostname", "(.+)")'


def dcgm(metric: str, host: str = "$host") -> str:
    """A dcgm-exporter metric filtered to ``host`` (a regex) under either host label name."""
    return with_host(selector(metric, f'Hostname=~"{host}|"', f'hostname=~"{host}|"'))


def sli_ratio(sli: SLI, window: str, *matchers: str) -> str:
    """Share of predictions per model over ``window`` that failed (``errors``) or were slower
    than the SLO latency (``slow``): 0, not nothing, when there were predictions but no bad ones."""
    total = f"sum by (model) (rate({selector(PREDICTIONS_TOTAL.name, *matchers)}[{window}]))"
    if sli == "errors":
        bad_series = selector(PREDICTIONS_TOTAL.name, 'status!="ok"', *matchers)
    else:
        bad_series = selector(PREDICTIONS_OVER_LATENCY_SLO_TOTAL.name, *matchers)
    bad = f"sum by (model) (rate({bad_series}[{window}]))"
    return f"({bad} or {total} * 0) / {total}"


def sli_record(sli: SLI, window: str) -> str:
    """Name of the recording rule that stores :func:`sli_ratio` for ``window``."""
    return f"model:ml_prediction_{sli}:ratio_rate{window}"


def number(value: float) -> str:
    """A threshold as PromQL and humans like it: ``0.0144``, not ``0.014400000000000013``."""
    return f"{value:.6g}"
