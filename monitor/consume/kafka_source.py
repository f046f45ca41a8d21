"""Kafka: a consumer group member that commits offsets only after the rows are committed.

``kafka://host:9092[,host2:9092]`` with ``--topic`` naming existing topics. Kafka acknowledges
by offset, not by message, so a partition's committed offset moves up to its oldest message not
yet acknowledged: a message the loop holds back (its batch could not be stored) keeps everything
after it uncommitted, and a restart or a rebalance delivers them again (stored once, by their
ids ``<topic>:<partition>:<offset>``). A message held longer than the ack wait is fetched again
from its offset, as NATS and Redis redeliver after theirs. Dead letters go to ``<topic>.dlq``
(created at start when missing) with the original key, headers and value.

URL query: ``?ack_wait=30`` overrides the command line's ack wait; ``?session_timeout_ms=``
the group session timeout (a member that died is replaced after it).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlsplit

from monitor.consume.kafka_client import GroupConsumer, Partition, Producer, Record, create_topics
from monitor.consume.source import DeadLetter, Message, SourceOptions, dead_letter_fields
from monitor.errors import BrokerError, ConfigError

log = logging.getLogger(__name__)

JOIN_WAIT = 30.0  # seconds start() waits for the group to assign partitions


def bootstrap_servers(url: str) -> str:
    netloc = urlsplit(url).netloc
    if not netloc:
        raise ConfigError(f"no broker in {url!r}: use kafka://host:9092[,host2:9092]")
    return netloc


class _Position(NamedTuple):
    partition: Partition
    offset: int


def message_id(record: Record) -> str:
    return f"{record.topic}:{record.partition}:{record.offset}"


class KafkaSource:
    kind = "kafka"

    def __init__(
        self, options: SourceOptions, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.options = options
        query = options.query()
        self.ack_wait = float(query.get("ack_wait", options.ack_wait_seconds))
        self.bootstrap = bootstrap_servers(options.url)
        self.clock = clock
        self._consumer = GroupConsumer(
            self.bootstrap,
            options.group,
            options.consumer,
            session_timeout_ms=int(query.get("session_timeout_ms", 10_000)),
        )
        self._producer: Producer | None = None
        self._next: dict[Partition, int] = {}  # one past the last offset fetched
        self._held: dict[Partition, dict[int, float]] = {}  # fetched, not acked: when
        self._committed: dict[Partition, int] = {}

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            with contextlib.suppress(BrokerError):
                await self.close()  # nothing half-open is left behind
            raise

    async def _start(self) -> None:
        await self._consumer.start()
        missing = set(self.options.topics) - await self._consumer.topics()
        if missing:
            first = sorted(missing)[0]
            raise BrokerError(
                f"no Kafka topic {', '.join(sorted(missing))}; create it first, e.g. "
                f"`kafka-topics.sh --bootstrap-server {self.bootstrap} --create --topic {first}`"
            )
        dead = sorted({t for t in map(self.options.dead_letter_topic, self.options.topics) if t})
        if dead:
            await create_topics(self.bootstrap, dead)
            self._producer = Producer(self.bootstrap, self.options.consumer)
            await self._producer.start()
        if not await self._consumer.subscribe(self.options.topics, self._revoked, JOIN_WAIT):
            log.warning("no partitions assigned after %ss; fetching will wait for them", JOIN_WAIT)

    async def fetch(self, max_messages: int, timeout: float) -> list[Message]:
        self._rewind_overdue()
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(out) < max_messages:
            wait_ms = int((deadline - time.monotonic()) * 1000)
            out += self._handed_out(
                await self._consumer.getmany(max(wait_ms, 0), max_messages - len(out))
            )
            if wait_ms <= 0:
                break
        return out

    def _handed_out(self, records: list[Record]) -> list[Message]:
        now = self.clock()
        out = []
        for record in records:
            partition = Partition(record.topic, record.partition)
            if record.offset < self._next.get(partition, 0):
                continue  # already handed out and not overdue (a fetch raced a rewind)
            self._held.setdefault(partition, {})[record.offset] = now
            self._next[partition] = record.offset + 1
            out.append(self._message(record, partition))
        return out

    @staticmethod
    def _message(record: Record, partition: Partition) -> Message:
        headers = {k.lower(): v.decode("utf-8", "replace") for k, v in record.headers}
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        return Message(
            topic=record.topic,
            id=message_id(record),
            value=record.value,
            headers=headers,
            key=key,
            timestamp=(
                datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
                if record.timestamp_ms is not None
                else None
            ),
            handle=_Position(partition, record.offset),
        )

    def _rewind_overdue(self) -> None:
        """Fetch again from the oldest message held longer than the ack wait."""
        deadline = self.clock() - self.ack_wait
        for partition, held in self._held.items():
            if held and min(held.values()) < deadline:
                oldest = min(held)
                self._consumer.seek(partition, oldest)
                self._next[partition] = oldest
                held.clear()

    async def ack(self, messages: Sequence[Message]) -> None:
        for message in messages:
            assert isinstance(message.handle, _Position)
            self._held.get(message.handle.partition, {}).pop(message.handle.offset, None)
        await self._commit(self._consumer.assignment())

    def _commit_point(self, partition: Partition) -> int | None:
        held = self._held.get(partition)
        point = min(held) if held else self._next.get(partition)
        if point is None or point <= self._committed.get(partition, -1):
            return None
        return point

    async def _commit(self, partitions: set[Partition]) -> None:
        offsets = {p: o for p in partitions if (o := self._commit_point(p)) is not None}
        if offsets:
            await self._consumer.commit(offsets)
            self._committed.update(offsets)

    async def _revoked(self, partitions: set[Partition]) -> None:
        """Before a rebalance hands partitions to another member: commit what is acked, then
        forget them (what is held will be delivered to the new owner)."""
        try:
            await self._commit(partitions & self._consumer.assignment())
        finally:
            for partition in partitions:
                self._next.pop(partition, None)
                self._held.pop(partition, None)
                self._committed.pop(partition, None)

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        published = [
            letter for letter in letters if self.options.dead_letter_topic(letter.message.topic)
        ]
        if not published:
            return []
        assert self._producer is not None  # started with the dead-letter topics
        await self._producer.send_all(
            [
                (
                    str(self.options.dead_letter_topic(letter.message.topic)),
                    None if letter.message.key is None else letter.message.key.encode(),
                    letter.message.value,
                    dead_letter_fields(letter),
                )
                for letter in published
            ]
        )
        return published

    async def lag(self) -> dict[str, int]:
        """Per topic: messages past this member's committed offsets, on its partitions.

        The end of a partition is its end offset, or the high watermark of the last fetch
        when that is further: a broker may answer the offsets request late (Tansu does)."""
        partitions = self._consumer.assignment()
        if not partitions:
            return dict.fromkeys(self.options.topics, 0)
        ends = await self._consumer.end_offsets(partitions)
        for partition in partitions:
            ends[partition] = max(ends.get(partition, 0), self._consumer.highwater(partition) or 0)
        unknown = [p for p in partitions if p not in self._committed]
        starts = await self._consumer.beginning_offsets(unknown) if unknown else {}
        out = dict.fromkeys(self.options.topics, 0)
        for partition in partitions:
            committed = self._committed.get(partition)
            if committed is None:
                committed = await self._consumer.committed(partition)
            base = committed if committed is not None else starts.get(partition, 0)
            out[partition.topic] = out.get(partition.topic, 0) + max(0, ends[partition] - base)
        return out

    async def close(self) -> None:
        try:
            await self._consumer.stop()
        finally:
            if self._producer is not None:
                await self._producer.stop()
