"""The two halves of a logged call (request and response events) and the records they make.

A request half that has to wait for its response is kept with its features already checked
(``ingest.prechecked.FeatureCells``), so completing the call checks only what the response
adds. A response half, and a request kept by an older release, are kept as decoded rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.ingest.prechecked import FeatureCells
from monitor.integrations import payloads


@dataclass
class Half:
    """One event, decoded: which half of which call, and its rows."""

    half: str
    model: str
    key: str
    variant: str
    status: str
    time: datetime | None
    version: str | None
    rows: list[dict[str, Any]] | None  # None: an error response whose body holds no outputs
    checked: FeatureCells | None = None  # a request's features as ingest checked them

    def as_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "status": self.status,
            "time": self.time.isoformat() if self.time else None,
            "version": self.version,
            "rows": None if self.checked else self.rows,
            "checked": self.checked.to_json() if self.checked else None,
        }

    @classmethod
    def from_json(cls, half: str, model: str, key: str, raw: Mapping[str, Any]) -> Half:
        time = datetime.fromisoformat(raw["time"]) if raw.get("time") else None
        checked = raw.get("checked")
        return cls(
            half,
            model,
            key,
            raw["variant"],
            raw["status"],
            time,
            raw.get("version"),
            raw["rows"],
            FeatureCells.from_json(model, checked) if checked else None,
        )

    def features(self) -> Sequence[Mapping[str, Any]] | None:
        """Each row's features for the records; empty when they were checked already."""
        if self.checked is not None:
            return [{}] * len(self.checked)
        return self.rows


@dataclass
class Call:
    model: str
    key: str
    request: Half | None = None
    response: Half | None = None
    index: int = 0  # first event of the call in the HTTP request

    def add(self, half: Half) -> None:
        setattr(self, half.half, half)

    @property
    def complete(self) -> bool:
        return self.request is not None and self.response is not None

    def with_waiting(self, half: str, raw: Mapping[str, Any]) -> Call:
        """This call with the other half that was waiting for it (``raw``, as kept)."""
        merged = Call(self.model, self.key, self.request, self.response, self.index)
        merged.add(Half.from_json(half, self.model, self.key, raw))
        return merged


@dataclass
class Records:
    """What a call stores: its records, and the request's checked features if it has them."""

    records: list[dict[str, Any]]
    cells: FeatureCells | None


def common(h: Half) -> dict[str, Any]:
    out: dict[str, Any] = {"model": h.model, "variant": h.variant, "status": h.status}
    if h.version is not None:
        out["model_version"] = h.version
    if h.time is not None:
        out["timestamp"] = h.time.isoformat()
    return out


def records(call: Call, *, gave_up: bool = False) -> Records:
    """The call's records; ``gave_up``: its other half was expected and is not coming."""
    first = call.request or call.response
    assert first is not None
    fields = common(first)
    if call.response is not None:
        fields["status"] = call.response.status
        if call.response.version is not None:
            fields.setdefault("model_version", call.response.version)
    elif gave_up and call.request is not None:
        # KServe logs only the responses it answered 200: a request alone most often failed
        fields["status"] = "no_response"
    if call.request and call.response and call.request.time and call.response.time:
        latency = (call.response.time - call.request.time).total_seconds() * 1000.0
        if latency >= 0:
            fields["latency_ms"] = latency
    features = call.request.features() if call.request else None
    predictions = call.response.rows if call.response else None
    out = payloads.join_records(call.key, features, predictions, fields)
    return Records(out, call.request.checked if call.request else None)
