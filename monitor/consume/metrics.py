"""The consumer's own health metrics, on an injected registry; names, help and labels are
the catalogue's (``monitor.catalogue.CONSUMER_*``).

Labels are the source kind (``nats``, ``redis``, ``kafka``) and the topic, both from the
command line, plus bounded reason words: nothing a message carries becomes a label value.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor import catalogue

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = _counter(catalogue.CONSUMER_MESSAGES_TOTAL, registry)
        self.rejected = _counter(catalogue.CONSUMER_REJECTED_TOTAL, registry)
        self.dead_lettered = _counter(catalogue.CONSUMER_DEAD_LETTERED_TOTAL, registry)
        self.retries = _counter(catalogue.CONSUMER_RETRIES_TOTAL, registry)
        self.lag = _gauge(catalogue.CONSUMER_LAG_MESSAGES, registry)
        self.last_commit = _gauge(catalogue.CONSUMER_LAST_COMMIT_TIMESTAMP_SECONDS, registry)
        spec = catalogue.CONSUMER_BATCH_SECONDS
        self.batch_seconds = Histogram(
            spec.name, spec.help, list(spec.labels), buckets=BATCH_BUCKETS, registry=registry
        )


def _counter(spec: catalogue.Metric, registry: CollectorRegistry) -> Counter:
    return Counter(spec.name, spec.help, list(spec.labels), registry=registry)


def _gauge(spec: catalogue.Metric, registry: CollectorRegistry) -> Gauge:
    return Gauge(spec.name, spec.help, list(spec.labels), registry=registry)
