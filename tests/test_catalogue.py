"""The metric catalogue is the one list of names: what the dashboards, rules and collectors say
agrees with it."""

from __future__ import annotations

import io
import json
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from sqlalchemy import Engine

from monitor import catalogue
from monitor.consume.metrics import ConsumerMetrics
from monitor.exporter import ResultsCollector
from monitor.ingest_metrics import IngestMetrics
from monitor.storage.engine import make_engine
from monitor.webhooks.metrics import WebhookCollector

ROOT = Path(__file__).resolve().parents[1]
# a PromQL metric name: recording rules have colons, ours start with ml_ or monitor_
_NAME = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)")
OURS = ("ml_", "monitor_")


def _strings(node: Any, key: str) -> Iterator[str]:
    """Every string value under ``key`` anywhere in a JSON/YAML document."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                yield v
            else:
                yield from _strings(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, key)


def _names(expr: str) -> set[str]:
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values are not names
    return set(_NAME.findall(without_strings))


def _rule_files() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "alerts").glob("*.rules.yml"))]


def _recorded() -> set[str]:
    return set(_strings(_rule_files(), "record"))


def _used_names() -> dict[str, set[str]]:
    """Our metric names per rendered file: dashboard queries, rule expressions, test series."""
    used: dict[str, set[str]] = {}
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        exprs = _strings(json.loads(path.read_text()), "expr")
        used[path.name] = {n for e in exprs for n in _names(e)}
    for path in sorted((ROOT / "alerts").rglob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        exprs = [*_strings(doc, "expr"), *_strings(doc, "series")]
        used[str(path.relative_to(ROOT))] = {n for e in exprs for n in _names(e)}
    return {file: {n for n in names if n.startswith(OURS)} for file, names in used.items()}


def test_every_ml_and_monitor_name_in_dashboards_and_alerts_is_catalogued() -> None:
    recorded = _recorded()
    unknown = {
        file: sorted(n for n in names if n not in catalogue.BY_NAME and n not in recorded)
        for file, names in _used_names().items()
    }
    assert {f: n for f, n in unknown.items() if n} == {}
    assert sum(len(n) for n in _used_names().values()) > 20  # the scan found the queries


def test_recording_rules_on_our_metrics_read_catalogued_metrics() -> None:
    for rule in (r for f in _rule_files() for g in f["groups"] for r in g["rules"]):
        if "record" in rule:
            ours = {n for n in _names(rule["expr"]) if n.startswith(OURS)}
            assert ours <= set(catalogue.BY_NAME) | _recorded(), rule["record"]


def _unreachable() -> Engine:
    return make_engine("postgresql://nobody@127.0.0.1:9/none")


def _described(families: list[Metric]) -> dict[str, tuple[str, str]]:
    return {f.name: (f.type, f.documentation) for f in families}


def _expected(*sources: catalogue.Source) -> dict[str, tuple[str, str]]:
    return {m.family: (m.type, m.help) for m in catalogue.CATALOGUE if m.source in sources}


def test_the_exporter_describes_every_result_and_job_family_as_catalogued() -> None:
    engine = _unreachable()
    described = _described(list(ResultsCollector(engine).describe()))
    engine.dispose()
    assert described == _expected("results", "jobs")


def test_ingest_counters_are_the_catalogued_ones() -> None:
    registry = CollectorRegistry()
    IngestMetrics(registry)
    assert _described(list(registry.collect())) == _expected("ingest")


def test_webhook_families_are_the_catalogued_ones() -> None:
    engine = _unreachable()
    described = _described(list(WebhookCollector(engine).describe()))
    engine.dispose()
    assert described == _expected("webhooks")


def test_consumer_families_are_the_catalogued_ones() -> None:
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry)
    for family in (metrics.messages, metrics.dead_lettered, metrics.lag):
        family.labels("kafka", "t")
    metrics.rejected.labels("kafka", "t", "invalid")
    metrics.retries.labels("kafka", "broker_error")
    metrics.last_commit.labels("kafka")
    metrics.batch_seconds.labels("kafka")
    families = list(registry.collect())
    assert _described(families) == _expected("consumer")
    for family in families:
        spec = catalogue.BY_NAME.get(family.name) or catalogue.BY_NAME[family.name + "_total"]
        for sample in family.samples:
            assert tuple(k for k in sample.labels if k != "le") == spec.labels, sample.name


def test_labels_of_ingest_counters_are_the_catalogued_ones() -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    metrics.accepted("predictions", 1)
    metrics.rejected("bad", 1)
    metrics.predictions_total.labels("m", "1", "ok").inc()
    metrics.slow_total.labels("m", "1").inc()
    for family in registry.collect():
        spec = catalogue.BY_NAME[family.name + "_total"]
        for sample in family.samples:
            assert tuple(sample.labels) == spec.labels


def test_names_and_types_follow_prometheus_conventions() -> None:
    for m in catalogue.CATALOGUE:
        assert m.name.startswith(OURS), m.name
        assert m.name.endswith("_total") == (m.type == "counter"), m.name
        assert len(set(m.labels)) == len(m.labels), m.name
        assert m.help, m.name
        assert not m.help.endswith("."), m.name
    assert len(catalogue.BY_NAME) == len(catalogue.CATALOGUE)


def test_a_threshold_is_only_read_where_there_is_one() -> None:
    assert catalogue.DATASET_DRIFT_SHARE.threshold == 0.5
    with pytest.raises(ValueError, match="no default threshold"):
        _ = catalogue.WINDOW_SAMPLES.threshold
    with pytest.raises(ValueError, match="not a result"):
        _ = catalogue.PREDICTIONS_TOTAL.result


def _loose_names(path: Path) -> list[str]:
    """Catalogued names spelled as string literals (docstrings aside) in ``path``."""
    names = re.compile(r"(?<![\w:])(" + "|".join(map(re.escape, catalogue.BY_NAME)) + r")(?![\w:])")
    found, previous = [], tokenize.NEWLINE
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        is_statement = previous in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
        if tok.type == tokenize.STRING and not is_statement and names.search(tok.string):
            found.append(f"{path.relative_to(ROOT)}:{tok.start[0]}")
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            previous = tok.type
    return found


def test_no_module_spells_a_catalogued_name_itself() -> None:
    modules = (p for p in (ROOT / "monitor").rglob("*.py") if p.name != "catalogue.py")
    assert [loose for p in sorted(modules) for loose in _loose_names(p)] == []
