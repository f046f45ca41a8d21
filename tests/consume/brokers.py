"""The real brokers the consumer tests talk to: publish, read the dead letters, count unacked.

NATS JetStream (127.0.0.1:4222) and Redis (127.0.0.1:6379) run on every machine of this
project and in CI. When one is unreachable the tests fail in CI (``CI`` set) and are skipped,
saying why, elsewhere. Kafka is a Tansu broker the session starts itself (tests/support/kafka.py):
it is a dev dependency, so it is never skipped.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from typing import Any, Protocol

import nats
import nats.js.errors
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

NATS_URL = os.environ.get("MONITOR_TEST_NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("MONITOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_reachable(url: str) -> None:
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError as exc:
        message = f"broker {url} unreachable ({exc}); it runs on every machine of this project"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI has the brokers: never skip there
        pytest.skip(message)


class Broker(Protocol):
    kind: str
    url: str

    def new_topic(self) -> str: ...
    async def create(self, topic: str) -> None: ...
    async def publish(
        self, topic: str, value: bytes, headers: dict[str, str] | None = None
    ) -> None: ...
    async def publish_many(self, topic: str, values: list[bytes]) -> None: ...
    async def dead_letters(self, topic: str) -> list[tuple[bytes, dict[str, str]]]: ...
    async def unacked(self, topic: str, group: str) -> int: ...
    async def cleanup(self) -> None: ...


class NatsBroker:
    kind = "nats"
    url = NATS_URL

    def __init__(self) -> None:
        self.streams: list[str] = []

    def new_topic(self) -> str:
        return f"mmtest.{uuid.uuid4().hex[:10]}"

    async def _js(self) -> Any:
        nc = await nats.connect(self.url)
        return nc, nc.jetstream()

    async def create(self, topic: str) -> None:
        nc, js = await self._js()
        name = topic.replace(".", "_")
        await js.add_stream(name=name, subjects=[topic])
        self.streams.append(name)
        await nc.close()

    async def publish(
        self, topic: str, value: bytes, headers: dict[str, str] | None = None
    ) -> None:
        nc, js = await self._js()
        await js.publish(topic, value, headers=headers)
        await nc.close()

    async def publish_many(self, topic: str, values: list[bytes]) -> None:
        nc, js = await self._js()
        for value in values:
            await js.publish(topic, value)
        await nc.close()

    async def dead_letters(self, topic: str) -> list[tuple[bytes, dict[str, str]]]:
        nc, js = await self._js()
        try:
            stream = await js.find_stream_name_by_subject(f"{topic}.dlq")
        except nats.js.errors.NotFoundError:
            await nc.close()
            return []
        self.streams.append(stream)
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            out.append((msg.data or b"", dict(msg.headers or {})))
        await nc.close()
        return out

    async def unacked(self, topic: str, group: str) -> int:
        from monitor.consume.nats_source import durable_name

        nc, js = await self._js()
        info = await js.consumer_info(topic.replace(".", "_"), durable_name(group, topic))
        await nc.close()
        return int(info.num_pending) + int(info.num_ack_pending)

    async def cleanup(self) -> None:
        nc, js = await self._js()
        for stream in set(self.streams):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(stream)
        await nc.close()


class RedisBroker:
    kind = "redis"
    url = REDIS_URL

    def __init__(self) -> None:
        self.keys: list[str] = []

    def new_topic(self) -> str:
        topic = f"mmtest:{uuid.uuid4().hex[:10]}"
        self.keys += [topic, f"{topic}.dlq"]
        return topic

    async def create(self, topic: str) -> None:
        """Redis streams need no creation: the consumer's group creates the key."""

    async def publish(
        self, topic: str, value: bytes, headers: dict[str, str] | None = None
    ) -> None:
        client = aioredis.Redis.from_url(self.url)
        await client.xadd(topic, {**(headers or {}), "value": value})
        await client.aclose()

    async def publish_many(self, topic: str, values: list[bytes]) -> None:
        client = aioredis.Redis.from_url(self.url)
        async with client.pipeline(transaction=False) as pipe:
            for value in values:
                pipe.xadd(topic, {"value": value})
            await pipe.execute()
        await client.aclose()

    async def dead_letters(self, topic: str) -> list[tuple[bytes, dict[str, str]]]:
        client = aioredis.Redis.from_url(self.url)
        entries = await client.xrange(f"{topic}.dlq")
        await client.aclose()
        out = []
        for _id, fields in entries:
            named = {k.decode(): v for k, v in fields.items()}
            value = named.pop("value")
            out.append((value, {k: v.decode() for k, v in named.items()}))
        return out

    async def unacked(self, topic: str, group: str) -> int:
        client = aioredis.Redis.from_url(self.url)
        groups = await client.xinfo_groups(topic)
        await client.aclose()
        for info in groups:
            if info["name"].decode() == group:
                return int(info.get("lag") or 0) + int(info["pending"])
        raise AssertionError(f"no group {group} on {topic}")

    async def cleanup(self) -> None:
        client = aioredis.Redis.from_url(self.url)
        if self.keys:
            await client.delete(*self.keys)
        await client.aclose()


class KafkaBroker:
    """Kafka on the Tansu broker the session started (tests/support/kafka.py)."""

    kind = "kafka"
    partitions = 2  # more than one, so offsets are committed per partition

    def __init__(self, url: str) -> None:
        self.url = url
        self.bootstrap = url.split("://", 1)[1]

    def new_topic(self) -> str:
        return f"mmtest.{uuid.uuid4().hex[:10]}"

    async def create(self, topic: str, partitions: int | None = None) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, partitions or self.partitions, 1)])
        finally:
            await admin.close()

    async def publish(
        self,
        topic: str,
        value: bytes,
        headers: dict[str, str] | None = None,
        key: bytes | None = None,
    ) -> None:
        await self.produce(topic, [(key, value, headers or {})])

    async def publish_many(self, topic: str, values: list[bytes]) -> None:
        await self.produce(topic, [(None, value, {}) for value in values])

    async def produce(
        self, topic: str, messages: list[tuple[bytes | None, bytes, dict[str, str]]]
    ) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            futures = [
                await producer.send(
                    topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
                )
                for key, value, headers in messages
            ]
            for future in futures:
                await future
        finally:
            await producer.stop()

    async def _ends(self, consumer: AIOKafkaConsumer, topic: str) -> dict[Any, int]:
        """Each partition's end, from fetch answers' high watermarks (Tansu's answer to the
        offsets request can trail the partition's end)."""
        await consumer.topics()
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await probe.start()
        try:
            probe.assign(tps)
            await probe.seek_to_beginning(*tps)
            for _ in range(50):
                if all(probe.highwater(tp) is not None for tp in tps):
                    break
                await probe.getmany(timeout_ms=100)
            return {tp: int(probe.highwater(tp)) for tp in tps}
        finally:
            await probe.stop()

    async def dead_letters(self, topic: str) -> list[tuple[bytes, dict[str, str]]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            if f"{topic}.dlq" not in await consumer.topics():
                return []
            ends = await self._ends(consumer, f"{topic}.dlq")
            consumer.assign(list(ends))
            await consumer.seek_to_beginning(*ends)
            out: list[tuple[bytes, dict[str, str]]] = []
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    out += [(r.value, {k: v.decode() for k, v in r.headers}) for r in records]
            return out
        finally:
            await consumer.stop()

    async def unacked(self, topic: str, group: str) -> int:
        """End offsets minus the group's committed ones (read without joining the group)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            ends = await self._ends(consumer, topic)
            consumer.assign(list(ends))
            committed = {tp: await consumer.committed(tp) for tp in ends}
        finally:
            await consumer.stop()
        return sum(end - (committed[tp] or 0) for tp, end in ends.items())

    async def cleanup(self) -> None:
        """Topics have unique names and the broker keeps them in memory for the session."""
