"""NATS JetStream: one durable pull consumer per subject, explicit acks.

``--topic`` is a subject that a stream already captures. The durable consumer
(``<group>-<subject>``) is created on first start with ``ack_wait`` from the options; a message
not acked within it (the consumer died mid-batch) is delivered again. The dead-letter subject
(``<subject>.dlq`` by default) gets a stream of its own when no stream captures it yet.
URL query: ``?ack_wait=30`` overrides the command line's ack wait.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from monitor.consume.source import DeadLetter, Message, SourceOptions, dead_letter_fields
from monitor.errors import BrokerError, BrokerUnavailable


def durable_name(group: str, subject: str) -> str:
    """Durable names may not hold ``.``, ``*``, ``>`` or spaces."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{group}-{subject}")


@asynccontextmanager
async def _translated(what: str) -> AsyncIterator[None]:
    try:
        yield
    except (nats.errors.NoServersError, nats.errors.ConnectionClosedError, OSError) as exc:
        raise BrokerUnavailable(f"NATS unreachable while {what}: {exc}") from exc
    except (nats.errors.Error, nats.js.errors.Error) as exc:
        raise BrokerError(f"NATS error while {what}: {exc}") from exc


class NatsSource:
    kind = "nats"

    def __init__(self, options: SourceOptions) -> None:
        self.options = options
        self.ack_wait = float(options.query().get("ack_wait", options.ack_wait_seconds))
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._subs: dict[str, JetStreamContext.PullSubscription] = {}
        self._streams: dict[str, str] = {}

    async def start(self) -> None:
        server = self.options.url.split("?", 1)[0]
        async with _translated("connecting"):
            self._nc = await nats.connect(
                server, connect_timeout=5, max_reconnect_attempts=-1, allow_reconnect=True
            )
            self._js = self._nc.jetstream()
            for subject in self.options.topics:
                await self._subscribe(self._js, subject)
                dead = self.options.dead_letter_topic(subject)
                if dead is not None:
                    await self._ensure_stream(self._js, dead)

    async def _subscribe(self, js: JetStreamContext, subject: str) -> None:
        try:
            stream = await js.find_stream_name_by_subject(subject)
        except nats.js.errors.NotFoundError as exc:
            raise BrokerError(
                f"no JetStream stream captures subject {subject!r}; create one, e.g. "
                f"`nats stream add PREDICTIONS --subjects {subject!r}`"
            ) from exc
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=-1,
            filter_subject=subject,
            deliver_policy=api.DeliverPolicy.ALL,
        )
        durable = durable_name(self.options.group, subject)
        self._streams[subject] = stream
        self._subs[subject] = await js.pull_subscribe(
            subject, durable=durable, stream=stream, config=config
        )

    async def _ensure_stream(self, js: JetStreamContext, subject: str) -> None:
        try:
            await js.find_stream_name_by_subject(subject)
        except nats.js.errors.NotFoundError:
            await js.add_stream(name=durable_name("ml-monitor-dlq", subject), subjects=[subject])

    async def fetch(self, max_messages: int, timeout: float) -> list[Message]:
        per_subject = max(1, max_messages // max(1, len(self._subs)))
        async with _translated("fetching"):
            batches = await asyncio.gather(
                *(self._fetch(s, sub, per_subject, timeout) for s, sub in self._subs.items())
            )
        return [m for batch in batches for m in batch]

    async def _fetch(
        self, subject: str, sub: JetStreamContext.PullSubscription, n: int, timeout: float
    ) -> list[Message]:
        try:
            msgs = await sub.fetch(n, timeout=timeout)
        except (TimeoutError, nats.errors.TimeoutError, nats.js.errors.FetchTimeoutError):
            return []  # nothing arrived in time (nats-py raises either kind)
        stream = self._streams[subject]
        return [self._message(subject, stream, m) for m in msgs]

    @staticmethod
    def _message(subject: str, stream: str, msg: Msg) -> Message:
        headers = {k.lower(): v for k, v in (msg.headers or {}).items()}
        return Message(
            topic=subject,
            id=f"{stream}:{msg.metadata.sequence.stream}",
            value=msg.data,
            headers=headers,
            key=headers.get("x-request-id"),
            handle=msg,
        )

    async def ack(self, messages: Sequence[Message]) -> None:
        async with _translated("acknowledging"):
            for message in messages:
                assert isinstance(message.handle, Msg)
                await message.handle.ack()
            assert self._nc is not None
            await self._nc.flush()

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> list[DeadLetter]:
        published: list[DeadLetter] = []
        async with _translated("dead-lettering"):
            assert self._js is not None
            for letter in letters:
                subject = self.options.dead_letter_topic(letter.message.topic)
                if subject is None:
                    continue
                await self._js.publish(
                    subject, letter.message.value, headers=dict(dead_letter_fields(letter))
                )
                published.append(letter)
        return published

    async def lag(self) -> dict[str, int]:
        out: dict[str, int] = {}
        async with _translated("reading consumer info"):
            for subject, sub in self._subs.items():
                info = await sub.consumer_info()
                out[subject] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return out

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
