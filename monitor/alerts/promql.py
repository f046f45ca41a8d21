"""PromQL fragments shared by the alert rules and the dashboards.

Two label quirks are smoothed over here, once:

- ``monitor_job_*`` metrics carry a ``job`` label (the scheduled job). With Prometheus' default
  ``honor_labels: false`` the scrape target's ``job`` wins and ours arrives as ``exported_job``;
  with ``honor_labels: true`` it stays ``job``. :func:`scheduler_job` works with either.
- dcgm-exporter names the host label ``Hostname`` in some versions and ``hostname`` in others.
  :func:`with_host` copies whichever is present into ``host``.
- Under MIG one physical GPU (``gpu``) reports per GPU instance (``GPU_I_PROFILE``,
  ``GPU_I_ID``); :func:`gpu_instance` names each instance in one always-present label, so a
  ``max by`` keeps the instances apart and a legend never shows a missing label's name.
"""

from __future__ import annotations

from collections.abc import Callable
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


def gpu_instance(expr: str) -> str:
    """``expr`` with ``gpu_instance``: the ``gpu`` index, and under MIG its instance as well
    (``0 MIG 3g.40gb #1`` from ``GPU_I_PROFILE="3g.40gb"``, ``GPU_I_ID="1"``)."""
    joined = f'label_join({expr}, "gpu_instance", "/", "gpu", "GPU_I_PROFILE", "GPU_I_ID")'
    whole = f'label_replace({joined}, "gpu_instance", "$1", "gpu_instance", "([^/]*)//")'
    mig = '"$1 MIG $2 #$3", "gpu_instance", "([^/]*)/([^/]+)/([^/]+)"'
    return f'label_replace({whole}, "gpu_instance", {mig})'


FB_USED, FB_FREE, FB_RESERVED = (
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_FB_RESERVED",
)
"""dcgm-exporter's default framebuffer counters (MiB); used + free + reserved is the whole
framebuffer (nvidia-smi's Total)."""


def framebuffer_in_use(series: Callable[[str], str] = str) -> str:
    """Share of the framebuffer allocations can no longer have, ``(used + reserved) / (used +
    free + reserved)`` = ``1 - free / total``: reserved memory (driver and, under MIG, instance
    overhead) is as unavailable as used memory, and ``used / (used + free)`` both shrinks the
    total and misses it. ``series`` turns a metric name into its selection (filters, labels,
    aggregation). An exporter without ``FB_RESERVED`` (older than 3.1) counts it as 0."""
    used, free = series(FB_USED), series(FB_FREE)
    reserved = f"({series(FB_RESERVED)} or {used} * 0)"
    return f"({used} + {reserved}) / ({used} + {free} + {reserved})"


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
