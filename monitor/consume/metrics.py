"""The consumer's own health metrics, on an injected registry.

Labels are the source kind (``nats``, ``redis``) and the topic, both from the command line,
plus bounded reason words: nothing a message carries becomes a label value.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LABELS = ["source", "topic"]


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "monitor_consumer_messages_total",
            "Messages consumed and acknowledged after their rows were committed",
            LABELS,
            registry=registry,
        )
        self.rejected = Counter(
            "monitor_consumer_rejected_total",
            "Messages that could not be stored (dead-lettered or skipped), by reason",
            [*LABELS, "reason"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "monitor_consumer_dead_lettered_total",
            "Rejected messages published to the dead-letter topic",
            LABELS,
            registry=registry,
        )
        self.unpaired = Counter(
            "monitor_consumer_unpaired_total",
            "Seldon request/response halves stored without their other half, by half",
            [*LABELS, "half"],
            registry=registry,
        )
        self.retries = Counter(
            "monitor_consumer_retries_total",
            "Batches held back and retried (not acknowledged), by reason",
            ["source", "reason"],
            registry=registry,
        )
        self.lag = Gauge(
            "monitor_consumer_lag_messages",
            "Messages the broker holds for this consumer group that are not yet acknowledged",
            LABELS,
            registry=registry,
        )
        self.last_commit = Gauge(
            "monitor_consumer_last_commit_timestamp_seconds",
            "When the consumer last committed a batch and acknowledged it",
            ["source"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "monitor_consumer_batch_seconds",
            "Time from a batch's fetch to its acknowledgement",
            ["source"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
