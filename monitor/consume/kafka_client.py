"""The narrow, typed face of aiokafka: the one module that imports it (aiokafka has no type
information), and the one place its errors become ours.

Only what the Kafka source uses: a group consumer with manual commits, a producer for dead
letters, and topic creation. Partitions are plain ``(topic, partition)`` tuples, records frozen
dataclasses, so nothing untyped leaks out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import aiokafka  # type: ignore[import-untyped]
import aiokafka.admin  # type: ignore[import-untyped]
import aiokafka.errors  # type: ignore[import-untyped]

from monitor.errors import BrokerError, BrokerUnavailable

TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


class Partition(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int | None = None  # the producer's create time (or the broker's append time)


Revoked = Callable[[set[Partition]], Awaitable[None]]

_UNREACHABLE = (
    aiokafka.errors.KafkaConnectionError,
    aiokafka.errors.NoBrokersAvailable,
    aiokafka.errors.KafkaTimeoutError,
    aiokafka.errors.RequestTimedOutError,
    OSError,
)


@asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    try:
        yield
    except _UNREACHABLE as exc:
        raise BrokerUnavailable(f"Kafka unreachable while {what}: {exc!r}") from exc
    except aiokafka.errors.KafkaError as exc:
        raise BrokerError(f"Kafka error while {what}: {exc!r}") from exc


def _tp(p: Partition) -> Any:
    return aiokafka.TopicPartition(p.topic, p.partition)


def _partition(tp: Any) -> Partition:
    return Partition(str(tp.topic), int(tp.partition))


class _Listener(aiokafka.ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, revoked: Revoked, assigned: asyncio.Event) -> None:
        self.revoked = revoked
        self.assigned = assigned

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        await self.revoked({_partition(tp) for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:  # noqa: ARG002
        """Fetching starts at the group's committed offsets: only say that we are in."""
        self.assigned.set()


class GroupConsumer:
    """A member of a consumer group: offsets are committed only when told to."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        client_id: str,
        *,
        session_timeout_ms: int = 10_000,
        request_timeout_ms: int = 10_000,
    ) -> None:
        self._consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 3),
            request_timeout_ms=request_timeout_ms,
        )

    async def start(self) -> None:
        """Connect (the group is joined on the first fetch after :meth:`subscribe`)."""
        async with translated("connecting the consumer"):
            await self._consumer.start()

    async def subscribe(self, topics: Sequence[str], revoked: Revoked, wait: float) -> bool:
        """Join the group for ``topics``; True once partitions are assigned within ``wait``
        seconds (the join goes on in the background either way)."""
        assigned = asyncio.Event()
        self._consumer.subscribe(topics=list(topics), listener=_Listener(revoked, assigned))
        try:
            await asyncio.wait_for(assigned.wait(), wait)
        except TimeoutError:
            return False
        return True

    async def topics(self) -> set[str]:
        async with translated("reading the topic list"):
            return {str(t) for t in await self._consumer.topics()}

    async def getmany(self, timeout_ms: int, max_records: int) -> list[Record]:
        async with translated("fetching"):
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [
            Record(
                r.topic,
                r.partition,
                r.offset,
                r.key,
                r.value if r.value is not None else b"",
                tuple((str(k), bytes(v or b"")) for k, v in r.headers or ()),
                int(r.timestamp) if r.timestamp is not None and r.timestamp >= 0 else None,
            )
            for records in batches.values()
            for r in records
        ]

    def assignment(self) -> set[Partition]:
        return {_partition(tp) for tp in self._consumer.assignment()}

    def seek(self, partition: Partition, offset: int) -> None:
        self._consumer.seek(_tp(partition), offset)

    async def commit(self, offsets: Mapping[Partition, int]) -> None:
        async with translated("committing offsets"):
            await self._consumer.commit({_tp(p): o for p, o in offsets.items()})

    async def committed(self, partition: Partition) -> int | None:
        async with translated("reading the committed offset"):
            offset = await self._consumer.committed(_tp(partition))
        return None if offset is None else int(offset)

    async def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        async with translated("reading end offsets"):
            ends = await self._consumer.end_offsets([_tp(p) for p in partitions])
        return {_partition(tp): int(o) for tp, o in ends.items()}

    def highwater(self, partition: Partition) -> int | None:
        """The partition's end offset as the last fetch answer gave it (None before one)."""
        offset = self._consumer.highwater(_tp(partition))
        return None if offset is None else int(offset)

    async def beginning_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        async with translated("reading beginning offsets"):
            starts = await self._consumer.beginning_offsets([_tp(p) for p in partitions])
        return {_partition(tp): int(o) for tp, o in starts.items()}

    async def stop(self) -> None:
        async with translated("leaving the consumer group"):
            await self._consumer.stop()


class Producer:
    """Waits for every write to be acknowledged by the broker (``acks=all``)."""

    def __init__(self, bootstrap: str, client_id: str) -> None:
        self._producer = aiokafka.AIOKafkaProducer(
            bootstrap_servers=bootstrap, client_id=client_id, acks="all"
        )

    async def start(self) -> None:
        async with translated("connecting the producer"):
            await self._producer.start()

    async def send_all(
        self, messages: Sequence[tuple[str, bytes | None, bytes, Mapping[str, str]]]
    ) -> None:
        """``(topic, key, value, headers)`` each; returns once all are acknowledged."""
        async with translated("producing"):
            futures = [
                await self._producer.send(
                    topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
                )
                for topic, key, value, headers in messages
            ]
            for future in futures:
                await future

    async def stop(self) -> None:
        async with translated("closing the producer"):
            await self._producer.stop()


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 1) -> None:
    """Create the topics that do not exist yet (existing ones are left as they are)."""
    admin = aiokafka.admin.AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    async with translated("creating topics"):
        await admin.start()
        try:
            wanted = [aiokafka.admin.NewTopic(n, partitions, 1) for n in names]
            response = await admin.create_topics(wanted)
        finally:
            await admin.close()
    for name, code, *_ in response.topic_errors:
        if code not in (0, TOPIC_ALREADY_EXISTS):
            raise BrokerError(f"Kafka refused to create topic {name!r} (error code {code})")
