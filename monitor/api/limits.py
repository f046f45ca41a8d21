"""One body limit for every route: 413 at ``MONITOR_MAX_BODY_BYTES``, before anything parses.

A pure ASGI middleware, so a route added tomorrow is covered without doing anything: a declared
``Content-Length`` over the limit is refused before a byte is read; otherwise the body is
counted as it streams in and refused at the first chunk over the limit (never read whole
first). A body within the limit is handed to the app as one message.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.errors import PayloadTooLarge


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        if limit <= 0:
            raise ValueError("the body limit must be positive")
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _refuse(
                scope, receive, send, f"body is {declared} bytes; the limit is {self.limit}"
            )
            return
        first = await self._read(receive)
        if first is None:
            await _refuse(scope, receive, send, f"body exceeds the limit of {self.limit} bytes")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # disconnects, for streaming responses
            replayed = True
            return first

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> Message | None:
        """The whole body as one message, or None as soon as it is over the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message  # the client went away; the app sees that
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    error = PayloadTooLarge(message)
    # the rest of the body is not read: the server closes the connection after answering
    await JSONResponse(error.as_body(), status_code=error.status, headers={"Connection": "close"})(
        scope, receive, send
    )
