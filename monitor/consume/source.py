"""What ``monitor consume`` needs from a broker: fetch a batch, ack it, dead-letter, lag.

A source hands out :class:`Message` objects that carry a stable ``id`` (the broker's own
position: a JetStream stream sequence, a Redis stream entry id, a Kafka partition offset): the
same message delivered again has the same id, which is what makes derived prediction ids, and so
the store, idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from monitor.errors import ConfigError


@dataclass(frozen=True)
class Message:
    topic: str
    id: str  # stable across redeliveries of the same message
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None
    timestamp: datetime | None = None  # when the producer wrote it, where the broker says
    # the broker's handle for ack; opaque to everything but the source that made it
    handle: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DeadLetter:
    message: Message
    reason: str  # a bounded word: undecodable, invalid, conflict, ...
    error: str  # what was wrong, for the person reading the dead-letter topic


def dead_letter_fields(letter: DeadLetter) -> dict[str, str]:
    """What a dead letter carries besides the original value and headers (same names on
    every broker: NATS headers, Redis stream fields)."""
    return {
        **letter.message.headers,
        "ml-monitor-reason": letter.reason,
        "ml-monitor-error": letter.error.replace("\r", " ").replace("\n", " "),
        "ml-monitor-source-topic": letter.message.topic,
        "ml-monitor-source-id": letter.message.id,
    }


class Source(Protocol):
    """One broker connection consuming one or more topics as a named consumer group."""

    kind: str  # the ``source`` label of the consumer metrics: nats, redis, kafka

    async def start(self) -> None:
        """Connect, and create the consumer group / durable consumer if it does not exist."""

    async def fetch(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to ``max_messages``; fewer (or none) once ``timeout`` seconds have passed."""

    async def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge: the broker will not deliver these to this group again."""

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        """Publish bad messages to their dead-letter topic (they are acked with the batch);
        returns those published (a topic without a dead-letter topic skips its letters)."""

    async def lag(self) -> dict[str, int]:
        """Messages per topic not yet delivered to this group (or delivered and not acked)."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SourceOptions:
    """What the command line says about any source; a URL's query can add per-broker knobs."""

    url: str
    topics: tuple[str, ...]
    group: str = "ml-monitor"
    consumer: str = "ml-monitor-1"
    dead_letter: str | None = "{topic}.dlq"  # None: bad messages are skipped and counted
    ack_wait_seconds: float = 30.0  # unacked messages are redelivered after this long

    def dead_letter_topic(self, topic: str) -> str | None:
        return None if self.dead_letter is None else self.dead_letter.format(topic=topic)

    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.url).query).items()}


def scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


def open_source(options: SourceOptions) -> Source:
    """The source for a URL's scheme; imported lazily so each broker's client is optional."""
    kind = scheme(options.url)
    if kind == "nats":
        from monitor.consume.nats_source import NatsSource

        return NatsSource(options)
    if kind in ("redis", "rediss"):
        from monitor.consume.redis_source import RedisSource

        return RedisSource(options)
    if kind == "kafka":
        from monitor.consume.kafka_source import KafkaSource

        return KafkaSource(options)
    raise ConfigError(
        f"unsupported source {options.url!r}: use nats://host:4222, redis://host:6379 "
        "or kafka://host:9092"
    )
