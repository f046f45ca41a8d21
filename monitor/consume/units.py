"""From broker messages to units of work: records stored together, messages acked together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.consume.records import decode_records
from monitor.consume.source import DeadLetter, Message
from monitor.errors import ClientError


@dataclass
class Unit:
    """Records that come from ``messages`` and only from them: once the records are committed
    the messages may be acked; if a record is refused, all the messages are dead-lettered."""

    records: list[Any]
    messages: list[Message]


@dataclass
class Decoded:
    units: list[Unit] = field(default_factory=list)
    rejects: list[DeadLetter] = field(default_factory=list)


class Decoder(Protocol):
    def decode(self, messages: Sequence[Message], now: float) -> Decoded:
        """Units ready to store; a decoder may hold messages back (a half waiting for its
        other half) and hand them out in a later call."""

    def held(self) -> int:
        """Messages received, not yet handed out in a unit (so not yet acked)."""


class RecordsDecoder:
    """Messages of our own JSON prediction records (see monitor.consume.records)."""

    def decode(self, messages: Sequence[Message], now: float) -> Decoded:  # noqa: ARG002
        out = Decoded()
        for message in messages:
            try:
                out.units.append(Unit(decode_records(message), [message]))
            except ClientError as exc:
                out.rejects.append(DeadLetter(message, "undecodable", exc.message))
        return out

    def held(self) -> int:
        return 0
