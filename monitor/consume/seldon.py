"""Seldon Core 2's Kafka topics: ``<prefix>.<namespace>.model.<name>.inputs`` and ``.outputs``.

Seldon's gateways write each inference call twice: the request to the model's ``inputs`` topic,
the model's response to its ``outputs`` topic, both keyed by the request (Kafka key
``<model>.<request id>`` from the pipeline gateway, copied to the response) and carrying the
``x-request-id`` header, which joins them here (the key when the header is missing). Values are
Open Inference Protocol V2 messages: protobuf ``inference.ModelInferRequest`` /
``ModelInferResponse`` by default, V2 JSON when the ``seldon-infer-type`` header says
``json/...`` (a value that is a JSON object is read as JSON too). A response on an inputs topic
(a pipeline step fed by the one before, ``seldon-infer-type: proto/InferModelResponse``) is read
as the request it is for the next model. An output carrying ``seldon-pipeline-errors`` is a
failed call.

A call that fails in the model goes to the namespace's errors topic instead,
``<prefix>.<namespace>.errors.errors``: the request's key and headers, the header
``seldon-pipeline-errors`` naming the model, and the error text as the value (the gateway's
``produce(..., errorTopic=true)``). Subscribed beside a model's topics, it is the response half
of that call with status ``error``, so the request is stored as a failed call at once instead of
as ``no_response`` after the wait. Errors of models whose inputs topic is not subscribed are
acknowledged and skipped (the topic is shared by the namespace).

Each message becomes one CloudEvent half for the KServe receiver, so the halves are joined in
PostgreSQL, in either order, exactly as the payload logger's are (``integration_pending``; a
request whose response never comes is stored alone by the service's scheduler after
``MONITOR_PAIRING_WAIT_SECONDS``). The model is ``<name>``; the latency is the difference of the
two messages' Kafka timestamps (approximate: produce times, not the model's own).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from monitor.consume.source import DeadLetter, Message
from monitor.consume.units import Decoded, Unit
from monitor.errors import ClientError, MalformedBody, Problem, ValidationFailed
from monitor.integrations import oip_proto
from monitor.integrations.cloudevents import CloudEvent
from monitor.integrations.kserve import KServeReceiver, Options

TOPIC = re.compile(  # always fullmatch: a topic with a trailing newline is not one
    r"(?P<prefix>[^.]+)\.(?P<namespace>[^.]+)\.model\.(?P<model>.+)\.(?P<half>inputs|outputs)"
)
ERRORS_TOPIC = re.compile(r"(?P<prefix>[^.]+)\.(?P<namespace>[^.]+)\.errors\.errors")
MAX_ERROR_CHARS = 2_000
INFER_TYPE = "seldon-infer-type"  # json/inferModelRequest, proto/InferModelResponse, ...
ERROR_HEADER = "seldon-pipeline-errors"
REQUEST_ID = "x-request-id"
EVENT_TYPE = "io.seldon.serving.inference.{half}"


def is_seldon_topic(topic: str) -> bool:
    return TOPIC.fullmatch(topic) is not None or ERRORS_TOPIC.fullmatch(topic) is not None


def models_of(topics: Sequence[str]) -> frozenset[str]:
    """The models whose own topics are among ``topics``."""
    found = (TOPIC.fullmatch(t) for t in topics)
    return frozenset(m["model"] for m in found if m is not None)


def _bad(what: str, problem: str) -> MalformedBody:
    return MalformedBody(f"{what} {problem}", [Problem(problem, field=what)])


def _json(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise _bad("message", "is not V2 JSON (seldon-infer-type says json)") from None


def body(message: Message, half: str) -> Any:
    """The V2 JSON body a message's value stands for."""
    infer_type = message.headers.get(INFER_TYPE, "")
    is_json = infer_type.startswith("json/") or (
        not infer_type and message.value.lstrip()[:1] == b"{"
    )
    if is_json:
        doc = _json(message.value)
    elif half == "response" or infer_type == "proto/InferModelResponse":
        doc = oip_proto.response_json(message.value)
    else:
        doc = oip_proto.request_json(message.value)
    if half == "request" and isinstance(doc, dict) and "inputs" not in doc and "outputs" in doc:
        doc = {**doc, "inputs": doc.pop("outputs")}  # the previous step's response
    return doc


def error_model(message: Message) -> str | None:
    """The model a message of the errors topic is about; None for a message of a model topic."""
    if ERRORS_TOPIC.fullmatch(message.topic) is None:
        return None
    model = message.headers.get(ERROR_HEADER)
    if not model:
        raise _bad(ERROR_HEADER, "header is missing or empty on a message of the errors topic")
    return model


def event(message: Message) -> CloudEvent:
    """The CloudEvent half a message of a Seldon model topic (or of the errors topic) stands
    for."""
    failed_model = error_model(message)
    match = TOPIC.fullmatch(message.topic) or ERRORS_TOPIC.fullmatch(message.topic)
    if match is None:
        raise _bad(
            "topic",
            f"{message.topic!r} is not <prefix>.<namespace>.model.<name>.inputs|outputs "
            "or <prefix>.<namespace>.errors.errors",
        )
    half = "response" if failed_model or match["half"] == "outputs" else "request"
    request_id = message.headers.get(REQUEST_ID) or message.key
    if not request_id:
        raise _bad(REQUEST_ID, "header is missing and the message has no key")
    extensions = {
        "inferenceservicename": failed_model or match["model"],
        "namespace": match["namespace"],
        "requestid": request_id,
    }
    if ERROR_HEADER in message.headers:
        extensions["statuscode"] = "500"
    data = (
        {"error": message.value.decode("utf-8", "replace")[:MAX_ERROR_CHARS]}
        if failed_model
        else body(message, half)
    )
    return CloudEvent(
        id=request_id,
        source=f"kafka:{message.topic}",
        type=EVENT_TYPE.format(half=half),
        specversion="1.0",
        time=message.timestamp,
        extensions=extensions,
        data=data,
    )


class SeldonDecoder:
    """One unit per message: its CloudEvent half, stored by :class:`PairingStore`; an errors
    topic message of a model not in ``models`` is a unit with nothing to store (acked)."""

    def __init__(self, models: frozenset[str] = frozenset()) -> None:
        self.models = models

    def decode(self, messages: Sequence[Message], now: float) -> Decoded:  # noqa: ARG002
        out = Decoded()
        for message in messages:
            try:
                failed_model = error_model(message)
                if failed_model is not None and failed_model not in self.models:
                    out.units.append(Unit([], [message]))
                    continue
                out.units.append(Unit([event(message)], [message]))
            except ClientError as exc:
                out.rejects.append(DeadLetter(message, "undecodable", exc.message))
        return out

    def held(self) -> int:
        return 0  # a half waiting for its partner waits in PostgreSQL, not here


class PairingStore:
    """The consumer's store for Seldon halves: the KServe receiver, all or nothing per batch.

    A 422 of a batch names rows, not messages: it is passed on without indexes, so the consumer
    finds the message at fault by storing the batch's messages one by one."""

    def __init__(self, receiver: KServeReceiver) -> None:
        self.receiver = receiver
        self.options = Options(mode="all")

    def __call__(self, events: list[Any]) -> object:
        try:
            return self.receiver.receive(events, self.options)
        except ValidationFailed as exc:
            if len(events) == 1:
                raise
            details = [Problem(p.problem, field=p.field) for p in exc.details]
            raise ValidationFailed(exc.message, details) from exc
