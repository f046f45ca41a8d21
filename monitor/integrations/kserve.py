"""``POST /v1/integrations/kserve``: KServe's and Seldon's payload loggers -> predictions.

A logged call arrives as two CloudEvents, the request and the response, sharing an id
(``ce-id``; Seldon's ``ce-requestid`` when present). They are joined in either order: the first
half waits in ``integration_pending`` (PostgreSQL, so a restart in between loses nothing) and
the second completes the call, in one transaction with the predictions it stores. A call whose
other half never comes is stored alone by ``flush_expired`` (run by the scheduler) once it has
waited ``pairing_wait_seconds``, or at once when ``max_pending_calls`` are already waiting.

Row ``i`` of a call becomes the prediction ``<key>:<i>``, so a redelivered event is stored once.
Latency is the difference of the halves' ``ce-time`` (set by the logger when it sends, not when
the model answered): approximate, and only when both halves carry one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection

from monitor.config import Settings
from monitor.errors import ClientError, MalformedBody, Problem, StorageError, ValidationFailed
from monitor.ingest.names import label_value_problem, model_name_problem
from monitor.ingest.prechecked import FeatureCells
from monitor.ingest.service import IngestService, IngestTransaction, SchemaMoved, StaleFeatures
from monitor.ingest.text import json_problem
from monitor.ingest_metrics import IngestMetrics
from monitor.integrations import cloudevents, halves, payloads
from monitor.integrations.cloudevents import CloudEvent
from monitor.integrations.halves import Call, Half
from monitor.storage import pending
from monitor.storage.models import ModelStore

SOURCE = "kserve"
_TYPES = {
    "org.kubeflow.serving.inference.request": "request",
    "org.kubeflow.serving.inference.response": "response",
    "io.seldon.serving.inference.request": "request",
    "io.seldon.serving.inference.response": "response",
}
_UNSET = frozenset({"", "NOTIMPLEMENTED"})  # what MLServer sends outside a SeldonDeployment
MODES = ("all", "request", "response")
FLUSH_BATCH = 500


@dataclass(frozen=True)
class Options:
    """The query string: ``?model=`` and ``?version=`` override the event's; ``mode`` is the
    logger's (``all`` pairs halves; ``request`` / ``response`` store each event alone)."""

    model: str | None = None
    version: str | None = None
    mode: str = "all"

    def __post_init__(self) -> None:
        if self.model is not None and model_name_problem(self.model):
            raise _query("model", str(model_name_problem(self.model)))
        if self.version is not None and label_value_problem(self.version):
            raise _query("version", str(label_value_problem(self.version)))
        if self.mode not in MODES:
            raise _query("mode", f"must be one of {', '.join(MODES)}")


def _query(name: str, problem: str) -> ValidationFailed:
    return ValidationFailed(f"query parameter {name} {problem}", [Problem(problem, field=name)])


@dataclass
class Outcome:
    received: int = 0
    paired: int = 0
    pending: int = 0
    unpaired: int = 0
    duplicates: int = 0
    stored: int = 0
    records: list[halves.Records] = field(default_factory=list)

    def as_body(self) -> dict[str, int]:
        return {
            "received": self.received,
            "stored": self.stored,
            "paired": self.paired,
            "pending": self.pending,
            "unpaired": self.unpaired,
            "duplicates": self.duplicates,
        }


class KServeReceiver:
    def __init__(
        self,
        ingest: IngestService,
        models: ModelStore,
        settings: Settings,
        metrics: IngestMetrics,
    ) -> None:
        self.ingest = ingest
        self.models = models
        self.wait = timedelta(seconds=settings.pairing_wait_seconds)
        self.max_pending = settings.max_pending_calls
        self.metrics = metrics
        self._pending = 0  # calls waiting, as last counted plus this process's changes since
        self._counted_at = float("-inf")

    # -- decoding -----------------------------------------------------------------------------

    def half(self, event: CloudEvent, index: int, options: Options) -> Half:
        try:
            return self._half(event, options)
        except ClientError as exc:
            if len(exc.details) <= 1 and (not exc.details or exc.details[0].index is None):
                where = exc.details[0].field if exc.details else None
                problem = exc.details[0].problem if exc.details else exc.message
                exc.details = [Problem(problem, index=index, field=where)]
            raise

    def _half(self, event: CloudEvent, options: Options) -> Half:
        kind = _TYPES.get(event.type)
        if kind is None:
            raise _header(event, "type", f"must be one of {', '.join(_TYPES)}")
        model = options.model or _model_of(event)
        key = event.extension("requestid") or event.id
        status = _status(event)
        variant = "canary" if event.extension("endpoint") == "canary" else "production"
        record = self.models.get(model)
        version = options.version or (record.options.model_version if record else None)
        if version is None and isinstance(event.data, dict):
            body_version = event.data.get("model_version")
            if isinstance(body_version, str) and not label_value_problem(body_version):
                version = body_version
        if kind == "request":
            order = (
                payloads.declared_order(record.config, [f.name for f in record.schema.features])
                if record
                else None
            )
            rows: list[dict[str, Any]] | None = payloads.decode_request(event.data, order)
        elif status == "ok":
            rows = payloads.decode_response(event.data)
        else:
            rows = _error_rows(event.data)
        # a waiting half is kept as JSONB; a request's rows pass ingest's checks before that
        unstorable = json_problem(rows, "data") if kind == "response" else None
        if unstorable:
            raise ValidationFailed(
                f"event data {unstorable[0]} {unstorable[1]}",
                [Problem(unstorable[1], field=unstorable[0])],
            )
        return Half(kind, model, key, variant, status, event.time, version, rows)

    # -- receiving ----------------------------------------------------------------------------

    def receive_http(self, headers: Mapping[str, str], body: bytes, options: Options) -> Outcome:
        """One HTTP request's events, in binary, structured or batch mode."""
        try:
            events = cloudevents.decode(headers, body)
        except ClientError:
            self.metrics.rejected("malformed_event", 1)
            raise
        return self.receive(events, options)

    def receive(self, events: Sequence[CloudEvent], options: Options) -> Outcome:
        """Store what these events complete and keep the rest; all of it or nothing."""
        try:
            decoded = [self.half(e, i, options) for i, e in enumerate(events)]
        except ClientError:
            self.metrics.rejected("malformed_event", 1)
            raise
        calls: dict[tuple[str, str], Call] = {}
        for index, h in enumerate(decoded):
            calls.setdefault((h.model, h.key), Call(h.model, h.key, index=index)).add(h)
        for _attempt in range(3):
            try:
                outcome = self._store(list(calls.values()), options)
            except SchemaMoved:
                continue
            outcome.received = len(events)
            self.metrics.accepted("kserve_events", len(events))
            return outcome
        raise StorageError("feature schema kept changing under this batch; retry")

    def _store(self, calls: Sequence[Call], options: Options) -> Outcome:
        outcome = Outcome()
        with self.ingest.transaction() as tx:
            conn = tx.conn
            if options.mode == "all":
                _check_requests(tx, [c.request for c in calls if c.request and not c.complete])
            for call in sorted(calls, key=lambda c: (c.model, c.key)):  # lock order
                if options.mode != "all":
                    outcome.records.append(halves.records(call))
                elif call.complete:  # both halves in this request (batch mode)
                    pending.delete(conn, SOURCE, call.model, call.key)
                    outcome.records.append(halves.records(call))
                    outcome.paired += 1
                else:
                    self._arrive(tx, call, outcome)
            outcome.stored = _stored(tx, outcome.records)
        self._pending += outcome.pending - outcome.paired
        self.metrics.unpaired(SOURCE, "pending_full", outcome.unpaired)
        self.metrics.dropped(SOURCE, "duplicate", outcome.duplicates)
        return outcome

    def _arrive(self, tx: IngestTransaction, call: Call, outcome: Outcome) -> None:
        """One half of a call: complete the call if its other half waits, else keep it.

        A response (most often the second half) first takes the request that waits for it. A
        request (most often the first) is kept at once, with the features ``_check_requests``
        checked; when its response was waiting after all, ``keep`` returns it and the call is
        completed."""
        conn = tx.conn
        half = call.request or call.response
        assert half is not None
        other = pending.other_half(half.half)
        if half.half == "response":
            waiting = pending.take(conn, SOURCE, call.model, call.key, half.half)
            if waiting is not None:
                outcome.records.append(halves.records(call.with_waiting(other, waiting)))
                outcome.paired += 1
                return
        kept = pending.keep(
            conn,
            SOURCE,
            call.model,
            call.key,
            half.half,
            orjson.dumps(half.as_json()),
            payloads.row_id(call.key, 0),
        )
        if kept is None:
            outcome.duplicates += 1
        elif kept.other is not None:  # the other half waited, or came at the same moment
            merged = call.with_waiting(other, kept.other)
            pending.delete(conn, SOURCE, call.model, call.key)
            outcome.records.append(halves.records(merged))
            outcome.paired += 1
        elif kept.new and self._full(conn):
            pending.delete(conn, SOURCE, call.model, call.key)
            outcome.records.append(halves.records(call, gave_up=True))
            outcome.unpaired += 1
        else:
            outcome.pending += kept.new

    def _full(self, conn: Connection) -> bool:
        """Whether ``max_pending_calls`` are waiting; counted again at most once a second."""
        now = time.monotonic()
        if now - self._counted_at > 1.0 or self._pending >= self.max_pending:
            self._pending = pending.count(conn, SOURCE, self.max_pending + 1)
            self._counted_at = now
        return self._pending > self.max_pending

    # -- the scheduler's part -----------------------------------------------------------------

    def flush_expired(self, now: datetime | None = None) -> int:
        """Store calls that waited longer than the pairing wait with what is known; returns how
        many calls were flushed. A call whose rows no longer pass the checks (the model's
        schema changed meanwhile) is dropped and counted, so it cannot block the others."""
        before = (now or datetime.now(UTC)) - self.wait
        flushed = 0
        while True:
            try:
                n = self._flush(before, FLUSH_BATCH)
            except ValidationFailed:
                n = self._flush_one_by_one(before)
            except SchemaMoved:
                continue
            flushed += n
            if n < FLUSH_BATCH:
                return flushed

    def _flush(self, before: datetime, limit: int) -> int:
        with self.ingest.transaction() as tx:
            expired = pending.take_expired(tx.conn, SOURCE, before, limit)
            for p in expired:
                pending.delete(tx.conn, SOURCE, p.model, p.pair_key)
            _stored(tx, [halves.records(_call(p), gave_up=True) for p in expired])
        self.metrics.unpaired(SOURCE, "timeout", len(expired))
        return len(expired)

    def _flush_one_by_one(self, before: datetime) -> int:
        done = 0
        while True:
            try:
                n = self._flush(before, 1)
            except ValidationFailed:
                with self.ingest.transaction() as tx:
                    for p in pending.take_expired(tx.conn, SOURCE, before, 1):
                        pending.delete(tx.conn, SOURCE, p.model, p.pair_key)
                self.metrics.dropped(SOURCE, "invalid_unpaired")
                n = 1
            if n == 0 or done >= FLUSH_BATCH:
                return done
            done += n


def _header(event: CloudEvent, name: str, problem: str) -> MalformedBody:
    where = event.attribute_name(name)
    return MalformedBody(
        f"CloudEvents attribute {where} {problem}", [Problem(problem, field=where)]
    )


def _model_of(event: CloudEvent) -> str:
    for attr in ("inferenceservicename", "modelid"):
        value = event.extension(attr)
        if value is not None and value not in _UNSET:
            if model_name_problem(value):
                raise _header(
                    event, attr, f"is not a usable model name: {model_name_problem(value)}"
                )
            return value
    raise _header(
        event, "inferenceservicename", "is required (or ce-modelid, or ?model= on the logger's URL)"
    )


def _status(event: CloudEvent) -> str:
    code = event.extension("statuscode")
    if code is None:
        return "ok"
    if not code.isdigit() or not 100 <= int(code) <= 599:
        raise _header(event, "statuscode", "must be an HTTP status code")
    return "ok" if 200 <= int(code) < 300 else "error"


def _error_rows(data: Any) -> list[dict[str, Any]] | None:
    """An error response usually carries an error message, not outputs."""
    try:
        return payloads.decode_response(data)
    except ClientError:
        return None


def _check_requests(tx: IngestTransaction, requests: Sequence[Half]) -> None:
    """Check the features of requests that may wait, all of a model's in one go, so bad ones
    are refused when they arrive (not when their response does: that one would be blamed) and
    a request waits as its checked features, never walked again."""
    by_model: dict[str, list[Half]] = {}
    for h in requests:
        by_model.setdefault(h.model, []).append(h)
    for group in by_model.values():
        parts = [payloads.join_records(h.key, h.rows, None, halves.common(h)) for h in group]
        cells = tx.check_features([r for p in parts for r in p])
        if cells is not None:
            for h, c in zip(group, cells.split([len(p) for p in parts]), strict=True):
                h.checked = c


def _call(p: pending.Pending) -> Call:
    call = Call(p.model, p.pair_key)
    for half in pending.HALVES:
        raw = getattr(p, half)
        if raw is not None:
            call.add(Half.from_json(half, p.model, p.pair_key, raw))
    return call


def _stored(tx: IngestTransaction, calls: Sequence[halves.Records]) -> int:
    """Store the calls' records in one go: those whose features were checked when they came
    with them (one batch per model), the rest checked in full."""
    plain = [r for c in calls if c.cells is None for r in c.records]
    checked: dict[tuple[str, int], list[halves.Records]] = {}
    for c in calls:
        if c.cells is not None:
            checked.setdefault((c.cells.model, c.cells.model_id), []).append(c)
    stored = 0
    for group in checked.values():
        cells = FeatureCells.joined([c.cells for c in group if c.cells is not None])
        records = [r for c in group for r in c.records]
        try:
            stored += tx.predictions_with(cells, records).stored
        except StaleFeatures:  # the model is not the one they were checked for: keep the rest
            tx.service.metrics.dropped(SOURCE, "stale_features", len(group))
            plain += records
    return stored + (tx.predictions(plain).stored if plain else 0)
