"""Deciding to retrain from a job's results: dataset drift, or a performance drop.

The job runner calls ``enqueue_from_results`` in the transaction that writes the results, so
the event and its evidence commit together. Event ids are derived from (model, reason, window,
window end): re-running a job for the same window enqueues nothing new.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from sqlalchemy import Connection

from monitor.services import Services
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from monitor.webhooks.outbox import Enqueued, enqueue_retrain
from monitor.webhooks.payload import Reason, public_base_url

DEFAULT_DATASET_DRIFT_SHARE = 0.5
EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "https://github.com/ml-monitor/ml-monitor/webhooks")


def job_event_id(model: str, reason: Reason, window: str, window_end: datetime) -> UUID:
    return uuid5(EVENT_NAMESPACE, f"job|{model}|{reason}|{window}|{window_end.isoformat()}")


def _share_threshold(model: ModelRecord, share: Result) -> float:
    if share.details and isinstance(share.details.get("threshold"), int | float):
        return float(share.details["threshold"])
    drift = model.config.get("drift") or {}
    return float(drift.get("dataset_drift_share", DEFAULT_DATASET_DRIFT_SHARE))


def _feature_key(result: Result) -> tuple[str, str]:
    return result.model_version, result.labels.get("feature", "")


def drifted_features(results: Sequence[Result], model_version: str) -> list[dict[str, Any]]:
    """Features with ``feature_drift_detected`` = 1, with their score, method and threshold."""
    scores = {
        _feature_key(r): r
        for r in results
        if r.metric == "feature_drift_score" and r.model_version == model_version
    }
    out = []
    for r in results:
        if r.metric != "feature_drift_detected" or r.model_version != model_version:
            continue
        if not r.value or r.value < 1:
            continue
        score = scores.get(_feature_key(r))
        details: Mapping[str, Any] = {**((score and score.details) or {}), **(r.details or {})}
        out.append(
            {
                "feature": r.labels.get("feature", ""),
                "score": score.value if score else details.get("score"),
                "method": (score.labels.get("method") if score else None)
                or r.labels.get("method")
                or details.get("method"),
                "threshold": details.get("threshold"),
            }
        )
    return sorted(out, key=lambda f: str(f["feature"]))


def drift_evidence(model: ModelRecord, results: Sequence[Result]) -> tuple[str, dict[str, Any]]:
    """(model_version, evidence) of the first version in dataset drift, or ("", {}) if none."""
    for share in results:
        if share.metric != "dataset_drift_share" or share.value is None:
            continue
        threshold = _share_threshold(model, share)
        if share.value >= threshold:
            return share.model_version, {
                "dataset_drift_share": share.value,
                "dataset_drift_threshold": threshold,
                "drifted_features": drifted_features(results, share.model_version),
            }
    return "", {}


def performance_evidence(results: Sequence[Result]) -> tuple[str, dict[str, Any]]:
    """(model_version, evidence) when the performance job flagged a drop: a ``model_performance``
    row whose details say ``"degraded": true`` (with e.g. ``baseline`` and ``threshold``)."""
    dropped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r.metric == "model_performance" and r.details and r.details.get("degraded") is True:
            figure = {"metric": r.labels.get("metric", ""), "value": r.value}
            figure.update({k: v for k, v in r.details.items() if k != "degraded"})
            dropped[r.model_version].append(figure)
    if not dropped:
        return "", {}
    version, figures = next(iter(dropped.items()))
    return version, {"performance": sorted(figures, key=lambda f: str(f["metric"]))}


def enqueue_from_results(
    conn: Connection,
    services: Services,
    model: ModelRecord,
    window_end: datetime,
    results: Sequence[Result],
) -> Enqueued | None:
    """Enqueue a retraining event if ``results`` (of any windows) show dataset drift or a
    performance drop: the first window that does, drift before performance. None when they show
    neither; otherwise what the outbox did with it (enqueued, duplicate, cooldown, no_webhook)."""
    by_window: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_window[r.window].append(r)
    for window, rows in by_window.items():
        candidates: tuple[tuple[Reason, tuple[str, dict[str, Any]]], ...] = (
            ("drift", drift_evidence(model, rows)),
            ("performance", performance_evidence(rows)),
        )
        for reason, (version, evidence) in candidates:
            if evidence:
                return enqueue_retrain(
                    conn,
                    model,
                    reason=reason,
                    window=window,
                    model_version=version,
                    evidence=evidence,
                    base_url=public_base_url(services.settings),
                    event_id=job_event_id(model.name, reason, window, window_end),
                )
    return None
