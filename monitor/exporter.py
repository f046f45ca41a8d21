"""Latest results and job health -> Prometheus, read at scrape time.

``ResultsCollector`` is registered on the service's injected registry. ``describe()`` names the
known families without touching the database. A read takes ``latest_results`` and
``job_state`` over one connection and is kept for ``ttl_seconds``: jobs write at most once a
tick, so scrapes in between (several Prometheus servers, dashboards) are answered from memory
and concurrent scrapes share one read. If the database cannot be read, the last read is served
again and the error is logged.

Each read is kept twice: as metric families for ``collect()`` (samples made only when someone
looks at them), and as exposition text, which ``exposition()`` serves for ``/metrics``.
prometheus_client formats every sample anew on each ``generate_latest``, several microseconds
per series: with tens of thousands of result series that alone is more than a scrape's budget.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from monitor import catalogue
from monitor.errors import StorageError
from monitor.jobs.base import JOB_NAMES
from monitor.storage.database import Database
from monitor.storage.jobs import JobState
from monitor.storage.results import ExportedRow, read_exported

log = logging.getLogger(__name__)
_F = TypeVar("_F", GaugeMetricFamily, CounterMetricFamily)

PREFIX = catalogue.RESULT_PREFIX
# Any figure a job writes that the catalogue does not know is exported too, untyped, with a
# generic help text.
GENERIC_HELP = "Figure computed by the ml-monitor jobs"

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
BASE_LABELS = catalogue.BASE_LABELS
# Suffixes Prometheus reserves for counters, histograms and summaries: a figure named so could
# collide with another collector's series.
_RESERVED_SUFFIXES = ("_total", "_created", "_count", "_sum", "_bucket", "_info")
_TEXT_TYPES = {"unknown": "untyped"}

Row = ExportedRow  # metric, model, version, window, labels (JSON text), value


@dataclass(frozen=True)
class Snapshot:
    """One read: the metric families and their exposition text."""

    families: list[Metric]
    text: bytes

    @property
    def names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.families)


class ResultsCollector(Collector):
    def __init__(
        self,
        db: Database,
        *,
        ttl_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        serve_stale: bool = False,
    ) -> None:
        """``serve_stale``: once something was read, a scrape after the TTL gets the last read
        at once while a background thread reads anew (the next scrape sees it); only the
        first read and a read after ``invalidate()`` make the scrape wait."""
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must not be negative")
        self.db = db
        self.ttl = ttl_seconds
        self.clock = clock
        self.serve_stale = serve_stale
        self._snapshot = Snapshot([], b"")
        self._expires = float("-inf")
        self._mutex = threading.Lock()
        self._loaded = False
        self._refreshing = False

    def describe(self) -> Iterable[Metric]:
        families = [Metric(m.name, m.help, m.type) for m in catalogue.RESULTS.values()]
        return families + _job_families()

    def collect(self) -> Iterable[Metric]:
        return list(self.snapshot().families)

    def snapshot(self) -> Snapshot:
        """The last read, read again once ``ttl_seconds`` have passed."""
        with self._mutex:
            if self.clock() < self._expires:
                return self._snapshot
            if not (self.serve_stale and self._loaded):
                self._keep(self._read())
            elif not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._refresh_in_background, daemon=True).start()
            return self._snapshot

    def invalidate(self) -> None:
        """Read again, and wait for it, at the next scrape."""
        with self._mutex:
            self._expires = float("-inf")
            self._loaded = False

    def _read(self) -> Snapshot | None:
        try:
            return snapshot_of(*read_exported(self.db))
        except StorageError:
            log.warning("cannot read results for /metrics; serving the last read", exc_info=True)
            return None

    def _keep(self, snapshot: Snapshot | None) -> None:
        if snapshot is not None:
            self._snapshot = snapshot
            self._loaded = True
            self._expires = self.clock() + self.ttl

    def _refresh_in_background(self) -> None:
        snapshot = self._read()
        with self._mutex:
            self._keep(snapshot)
            self._refreshing = False


def exposition(registry: CollectorRegistry, results: ResultsCollector) -> bytes:
    """What ``generate_latest(registry)`` says, with the families of ``results`` (registered on
    ``registry``) taken from their cached text instead of formatted again."""
    cached = results.snapshot()
    return generate_latest(_Without(registry, cached.names)) + cached.text


class _Without(Collector):
    def __init__(self, registry: CollectorRegistry, names: frozenset[str]) -> None:
        self.registry = registry
        self.names = names

    def collect(self) -> Iterable[Metric]:
        return (m for m in self.registry.collect() if m.name not in self.names)


def snapshot_of(rows: Sequence[Row], states: Sequence[JobState]) -> Snapshot:
    """Every latest result and every job's health, as families and as exposition text."""
    by_metric: dict[str, list[Row]] = {}
    for row in rows:
        by_metric.setdefault(row[0], []).append(row)
    labels = _LabelCache()
    families: list[Metric] = []
    text: list[str] = []
    for metric, group in by_metric.items():
        if not _exportable(metric):
            continue
        family = ResultFamily(metric, group, labels)
        families.append(family)
        text.append(_header(family))
        text.extend(
            f"{family.name}{{{labels.text(r[1], r[2], r[3], r[4])}}} {_number(r[5])}\n"
            for r in group
        )
    jobs = _job_families(states)
    return Snapshot(families + jobs, ("".join(text) + render(jobs)).encode())


class ResultFamily(Metric):
    """A family of result series whose ``samples`` are made from its rows on first use: the
    exposition text needs none of these objects, ``collect()`` users get them all."""

    def __init__(self, metric: str, rows: list[Row], labels: _LabelCache) -> None:
        self._rows = rows
        self._labels = labels
        self._made: list[Sample] | None = None
        known = catalogue.RESULTS.get(metric)
        super().__init__(
            PREFIX + metric,
            known.help if known else GENERIC_HELP,
            known.type if known else "unknown",
        )

    @property
    def samples(self) -> list[Sample]:
        if self._made is None:
            self._made = [
                Sample(self.name, self._labels.mapping(r[1], r[2], r[3], r[4]), r[5])
                for r in self._rows
            ]
        return self._made

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        # Metric.__init__ starts every family with []; the rows are the samples here
        if value:
            self._made = value


class _LabelCache:
    """Label sets parsed, checked and escaped once per distinct value within one read: the same
    feature, method and variant labels repeat across models and windows."""

    def __init__(self) -> None:
        self._extra: dict[str, dict[str, str]] = {}
        self._extra_text: dict[str, str] = {}
        self._base_text: dict[tuple[str, str, str], str] = {}

    def parsed(self, labels: str) -> dict[str, str]:
        found = self._extra.get(labels)
        if found is None:
            parsed = orjson.loads(labels)
            found = {
                k: str(v)
                for k, v in sorted(parsed.items())
                if _LABEL.fullmatch(k) and not k.startswith("__") and k not in BASE_LABELS
            }
            self._extra[labels] = found
        return found

    def mapping(self, model: str, version: str, window: str, labels: str) -> dict[str, str]:
        return {"model": model, "model_version": version, "window": window, **self.parsed(labels)}

    def text(self, model: str, version: str, window: str, labels: str) -> str:
        extra = self._extra_text.get(labels)
        if extra is None:
            extra = "".join(f',{k}="{_escape(v)}"' for k, v in self.parsed(labels).items())
            self._extra_text[labels] = extra
        key = (model, version, window)
        base = self._base_text.get(key)
        if base is None:
            base = f'model="{_escape(model)}",model_version="{_escape(version)}",'
            base += f'window="{_escape(window)}"'
            self._base_text[key] = base
        return base + extra


def render(families: Iterable[Metric]) -> str:
    """The text exposition format (0.0.4) of ``families``, as ``generate_latest`` writes it."""
    out: list[str] = []
    for f in families:
        out.append(_header(f))
        out.extend(f"{s.name}{_label_text(s.labels)} {_number(s.value)}\n" for s in f.samples)
    return "".join(out)


def _header(f: Metric) -> str:
    name = f.name + "_total" if f.type == "counter" else f.name
    doc = f.documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {_TEXT_TYPES.get(f.type, f.type)}\n"


def _label_text(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")
    return value


def _number(value: float) -> str:
    """A sample value exactly as ``generate_latest`` writes it."""
    if -1e6 < value < 1e6:  # Python's repr is Go's format here (and NaN is not in range)
        return repr(float(value))
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def _exportable(metric: str) -> bool:
    name = PREFIX + metric
    if _NAME.fullmatch(name) and not name.endswith(_RESERVED_SUFFIXES):
        return True
    _warn_unexportable(metric)
    return False


@functools.cache
def _warn_unexportable(metric: str) -> None:
    log.warning("result metric %r is not exportable to Prometheus; skipped", metric)


def _job_families(states: Iterable[JobState] | None = None) -> list[Metric]:
    """The job health families; without ``states`` (describe) they have no samples."""
    duration = _family(GaugeMetricFamily, catalogue.JOB_DURATION_SECONDS)
    success = _family(GaugeMetricFamily, catalogue.JOB_LAST_SUCCESS_TIMESTAMP_SECONDS)
    failures = _family(CounterMetricFamily, catalogue.JOB_FAILURES_TOTAL)
    by_job = {s.job: s for s in states or ()}
    for job in sorted(set(JOB_NAMES) | set(by_job)) if states is not None else ():
        state = by_job.get(job)
        failures.add_metric([job], state.failures_total if state else 0)
        if state and state.last_duration_seconds is not None:
            duration.add_metric([job], state.last_duration_seconds)
        if state and state.last_success_at is not None:
            success.add_metric([job], state.last_success_at.timestamp())
    return [duration, success, failures]


def _family(kind: type[_F], metric: catalogue.Metric) -> _F:
    return kind(metric.family, metric.help, labels=list(metric.labels))
