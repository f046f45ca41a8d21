"""Deciding to retrain from a job's results: dataset drift, or a performance drop.

Dataset drift: a ``dataset_drift_share`` row at or above the model's ``drift.dataset_drift_share``.
A performance drop: a ``model_performance`` figure more than 10 % worse than its average over
the previous 7 days of results, on at least ``drift.min_samples`` labelled predictions (the
MLPerformanceDrop alert rule, decided here too so a deployment without Prometheus retrains).

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

from monitor.catalogue import (
    DATASET_DRIFT_SHARE,
    FEATURE_DRIFT_DETECTED,
    FEATURE_DRIFT_SCORE,
    MODEL_PERFORMANCE,
    PERFORMANCE_BASELINE_DAYS,
    PERFORMANCE_HIGHER_IS_BETTER,
    PERFORMANCE_LOWER_IS_BETTER,
)
from monitor.jobs.context import JobContext
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result, performance_baselines
from monitor.webhooks.outbox import Enqueued, enqueue_retrain
from monitor.webhooks.payload import Reason, public_base_url

# The MLPerformanceDrop alert rule's defaults (monitor.alerts.rules starts from the same)
PERFORMANCE_DROP = MODEL_PERFORMANCE.threshold
BASELINE_DAYS = PERFORMANCE_BASELINE_DAYS
EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "https://github.com/ml-monitor/ml-monitor/webhooks")


def job_event_id(model: str, reason: Reason, window: str, window_end: datetime) -> UUID:
    return uuid5(EVENT_NAMESPACE, f"job|{model}|{reason}|{window}|{window_end.isoformat()}")


def _share_threshold(model: ModelRecord, share: Result) -> float:
    if share.details and isinstance(share.details.get("threshold"), int | float):
        return float(share.details["threshold"])
    return model.options.drift.dataset_drift_share


def drifted_features(results: Sequence[Result], model_version: str) -> list[dict[str, Any]]:
    """Features with ``feature_drift_detected`` = 1: the verdict's method, its score (and
    p-value where the method has one) and threshold. A feature may have several
    ``feature_drift_score`` rows (PSI is always reported); the verdict's method's counts."""
    scores = {
        (r.labels.get("feature", ""), r.labels.get("method", "")): r
        for r in results
        if r.metric == FEATURE_DRIFT_SCORE.result and r.model_version == model_version
    }
    out = []
    for r in results:
        if r.metric != FEATURE_DRIFT_DETECTED.result or r.model_version != model_version:
            continue
        if r.value is None or r.value < 1:
            continue
        details: Mapping[str, Any] = r.details or {}
        feature = r.labels.get("feature", "")
        method = r.labels.get("method") or details.get("method")
        score = scores.get((feature, method or ""))
        score_details: Mapping[str, Any] = (score.details if score else None) or {}
        entry: dict[str, Any] = {
            "feature": feature,
            "method": method,
            "score": score.value if score else details.get("score"),
            "threshold": details.get("threshold", score_details.get("threshold")),
        }
        pvalue = details.get("pvalue", score_details.get("pvalue"))
        if pvalue is not None:
            entry["pvalue"] = pvalue
        out.append(entry)
    return sorted(out, key=lambda f: str(f["feature"]))


def drift_evidence(model: ModelRecord, results: Sequence[Result]) -> tuple[str, dict[str, Any]]:
    """(model_version, evidence) of the first version in dataset drift, or ("", {}) if none."""
    for share in results:
        if share.metric != DATASET_DRIFT_SHARE.result or share.value is None:
            continue
        threshold = _share_threshold(model, share)
        if share.value >= threshold:
            return share.model_version, {
                "dataset_drift_share": share.value,
                "dataset_drift_threshold": threshold,
                "drifted_features": drifted_features(results, share.model_version),
            }
    return "", {}


def _dropped(metric: str, value: float, baseline: float, drop: float) -> bool:
    if metric in PERFORMANCE_HIGHER_IS_BETTER:
        return value < (1 - drop) * baseline
    if metric in PERFORMANCE_LOWER_IS_BETTER:
        return value > (1 + drop) * baseline
    return False


def performance_evidence(
    model: ModelRecord,
    results: Sequence[Result],
    baselines: Mapping[tuple[str, str, str], float],
    drop: float = PERFORMANCE_DROP,
) -> tuple[str, dict[str, Any]]:
    """(model_version, evidence) of the first version whose performance is more than ``drop``
    worse than its baseline on enough labelled predictions, or ("", {}) if none is."""
    min_samples = model.options.drift.min_samples
    dropped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if r.metric != MODEL_PERFORMANCE.result or r.value is None:
            continue
        name = r.labels.get("metric", "")
        baseline = baselines.get((r.model_version, r.window, name))
        samples = (r.details or {}).get("samples", 0)
        if baseline is None or samples < min_samples:
            continue
        if _dropped(name, r.value, baseline, drop):
            dropped[r.model_version].append(
                {"metric": name, "value": r.value, "baseline": baseline, "samples": samples}
            )
    if not dropped:
        return "", {}
    version, figures = next(iter(dropped.items()))
    return version, {
        "performance": sorted(figures, key=lambda f: str(f["metric"])),
        "performance_drop": drop,
        "baseline_days": BASELINE_DAYS,
    }


def enqueue_from_results(
    conn: Connection,
    ctx: JobContext,
    model: ModelRecord,
    window_end: datetime,
    results: Sequence[Result],
) -> Enqueued | None:
    """Enqueue a retraining event if ``results`` (of any windows) show dataset drift or a
    performance drop: the first window that does, drift before performance. None when they show
    neither; otherwise what the outbox did with it (enqueued, duplicate, cooldown, no_webhook)."""
    if model.options.webhook is None:
        return None
    by_window: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_window[r.window].append(r)
    baselines: Mapping[tuple[str, str, str], float] = {}
    if any(r.metric == MODEL_PERFORMANCE.result for r in results):
        baselines = performance_baselines(conn, model.id, window_end, BASELINE_DAYS)
    for window, rows in by_window.items():
        candidates: tuple[tuple[Reason, tuple[str, dict[str, Any]]], ...] = (
            ("drift", drift_evidence(model, rows)),
            ("performance", performance_evidence(model, rows, baselines)),
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
                    base_url=public_base_url(ctx.settings),
                    event_id=job_event_id(model.name, reason, window, window_end),
                )
    return None
