"""Redis Streams: a consumer group per stream key, XREADGROUP / XACK, XAUTOCLAIM for the dead.

``--topic`` is a stream key. The group is created (``MKSTREAM``, from the first entry) on
first start. An entry's payload is its ``value`` field (or its only field); other fields are
kept as headers. On start the consumer first reads its own pending entries (delivered before a
crash, never acked); entries another consumer left pending for longer than the ack wait are
claimed with XAUTOCLAIM. Dead letters are XADDed to ``<key>.dlq`` (capped, approximately, at
100,000 entries).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from monitor.consume.source import DeadLetter, Message, SourceOptions, dead_letter_fields
from monitor.errors import BrokerError, BrokerUnavailable

DLQ_MAXLEN = 100_000


@asynccontextmanager
async def _translated(what: str) -> AsyncIterator[None]:
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        raise BrokerUnavailable(f"Redis unreachable while {what}: {exc}") from exc
    except redis.exceptions.RedisError as exc:
        raise BrokerError(f"Redis error while {what}: {exc}") from exc


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class RedisSource:
    kind = "redis"

    def __init__(self, options: SourceOptions) -> None:
        self.options = options
        self.ack_wait = float(options.query().get("ack_wait", options.ack_wait_seconds))
        self._client: Any = None  # redis.asyncio.Redis; its stubs mix sync and async returns
        self._recovering = True  # own pending entries first, then new ones
        self._claimed_at = 0.0

    async def start(self) -> None:
        url = self.options.url.split("?", 1)[0]
        self._client = aioredis.Redis.from_url(url, socket_connect_timeout=5)
        async with _translated("creating the consumer group"):
            for key in self.options.topics:
                try:
                    await self._client.xgroup_create(key, self.options.group, id="0", mkstream=True)
                except redis.exceptions.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

    async def fetch(self, max_messages: int, timeout: float) -> list[Message]:
        async with _translated("reading"):
            if self._recovering:
                own = await self._read("0", max_messages, None)
                if own:
                    return own
                self._recovering = False
            claimed = await self._claim(max_messages)
            if claimed:
                return claimed
            return await self._read(">", max_messages, max(1, int(timeout * 1000)))

    async def _read(self, start: str, count: int, block_ms: int | None) -> list[Message]:
        reply = await self._client.xreadgroup(
            self.options.group,
            self.options.consumer,
            {key: start for key in self.options.topics},
            count=count,
            block=block_ms,
        )
        return [
            self._message(_text(key), entry_id, fields)
            for key, entries in (reply or [])
            for entry_id, fields in entries
            if fields  # a pending entry deleted from the stream comes back empty
        ]

    async def _claim(self, count: int) -> list[Message]:
        """Entries other consumers took and never acked, idle longer than the ack wait."""
        now = time.monotonic()
        if now - self._claimed_at < self.ack_wait / 2:
            return []
        self._claimed_at = now
        out: list[Message] = []
        for key in self.options.topics:
            _next, entries, *_deleted = await self._client.xautoclaim(
                key,
                self.options.group,
                self.options.consumer,
                min_idle_time=int(self.ack_wait * 1000),
                count=count,
            )
            out += [self._message(key, eid, fields) for eid, fields in entries if fields]
        return out

    @staticmethod
    def _message(key: str, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Message:
        named = {_text(k): v for k, v in fields.items()}
        value_field = "value" if "value" in named or len(named) != 1 else next(iter(named))
        value = named.pop(value_field, b"")
        headers = {k.lower(): _text(v) for k, v in named.items()}
        return Message(
            topic=key,
            id=f"{key}:{_text(entry_id)}",
            value=value if isinstance(value, bytes) else str(value).encode(),
            headers=headers,
            key=headers.get("x-request-id"),
            handle=_text(entry_id),
        )

    async def ack(self, messages: Sequence[Message]) -> None:
        by_key: dict[str, list[str]] = {}
        for message in messages:
            by_key.setdefault(message.topic, []).append(str(message.handle))
        async with _translated("acknowledging"), self._client.pipeline(transaction=False) as pipe:
            for key, ids in by_key.items():
                pipe.xack(key, self.options.group, *ids)
            await pipe.execute()

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        published: list[DeadLetter] = []
        async with _translated("dead-lettering"), self._client.pipeline(transaction=False) as pipe:
            for letter in letters:
                key = self.options.dead_letter_topic(letter.message.topic)
                if key is None:
                    continue
                fields = {**dead_letter_fields(letter), "value": letter.message.value}
                pipe.xadd(key, fields, maxlen=DLQ_MAXLEN, approximate=True)
                published.append(letter)
            await pipe.execute()
        return published

    async def lag(self) -> dict[str, int]:
        out: dict[str, int] = {}
        async with _translated("reading group info"):
            for key in self.options.topics:
                for group in await self._client.xinfo_groups(key):
                    if _text(group["name"]) == self.options.group:
                        out[key] = int(group.get("lag") or 0) + int(group.get("pending") or 0)
        return out

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
