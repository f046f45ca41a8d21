"""Retraining webhooks: a PostgreSQL outbox, HMAC-signed delivery with retries, and the
Alertmanager receiver's translation of alerts into events. See docs/webhooks.md.

    outbox.py        enqueue_retrain (in the caller's transaction; the table: storage.outbox)
    triggers.py      enqueue_from_results: the job runner's hook (dataset drift, performance)
    alertmanager.py  Alertmanager v4 payloads -> events (receive_alerts)
    dispatcher.py    dispatch_pending: claim, sign, POST, retry with backoff, dead-letter
    signing.py       signature / verify
    metrics.py       WebhookCollector: monitor_webhook_deliveries_total, monitor_webhook_events
"""

from monitor.storage.outbox import list_events, retry_event
from monitor.webhooks.outbox import Enqueued, enqueue_retrain
from monitor.webhooks.signing import signature, verify

__all__ = ["Enqueued", "enqueue_retrain", "list_events", "retry_event", "signature", "verify"]
