"""Webhook metrics, read from the outbox tables at scrape time.

``monitor_webhook_deliveries_total{outcome}`` is persisted (``webhook_delivery_counts``, bumped
in the transaction that records each attempt), so it survives restarts and every replica
exports the same cluster-wide totals: aggregate with ``max``, not ``sum``, across instances.
``monitor_webhook_events{status}`` is the outbox right now; ``status="dead"`` are the dead
letters waiting for ``POST /v1/webhooks/{event_id}/retry``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor import catalogue
from monitor.errors import StorageError
from monitor.storage.database import Database
from monitor.storage.outbox import delivery_totals, status_counts

log = logging.getLogger(__name__)

_DELIVERIES = (catalogue.WEBHOOK_DELIVERIES_TOTAL.family, catalogue.WEBHOOK_DELIVERIES_TOTAL.help)
_EVENTS = (catalogue.WEBHOOK_EVENTS.family, catalogue.WEBHOOK_EVENTS.help)


class WebhookCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        # no query at registration time
        return [
            CounterMetricFamily(
                *_DELIVERIES, labels=list(catalogue.WEBHOOK_DELIVERIES_TOTAL.labels)
            ),
            GaugeMetricFamily(*_EVENTS, labels=list(catalogue.WEBHOOK_EVENTS.labels)),
        ]

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        try:
            with self.db.connect() as conn:
                totals, counts = delivery_totals(conn), status_counts(conn)
        except StorageError as exc:
            # a scrape must not fail because of one collector; the absent series says enough
            log.warning("webhook metrics unavailable: %s", exc)
            return []
        deliveries = CounterMetricFamily(
            *_DELIVERIES, labels=list(catalogue.WEBHOOK_DELIVERIES_TOTAL.labels)
        )
        for outcome, total in totals.items():
            deliveries.add_metric([outcome], total)
        events = GaugeMetricFamily(*_EVENTS, labels=list(catalogue.WEBHOOK_EVENTS.labels))
        for status, n in counts.items():
            events.add_metric([status], n)
        return [deliveries, events]


def register_webhook_metrics(registry: CollectorRegistry, db: Database) -> WebhookCollector:
    collector = WebhookCollector(db)
    registry.register(collector)
    return collector
