"""The route class every router uses: JSON bodies read with orjson, one error shape.

FastAPI parses a declared JSON body with the standard library, which answers a deeply nested
document with a RecursionError that surfaces as a bare 400. ``MonitorRequest.json`` uses orjson
instead (depth limit 1024): every malformed body, however it is malformed, raises a
``JSONDecodeError`` with its position, which FastAPI reports as ``json_invalid`` and the error
handlers turn into ``malformed_body`` naming that position, as the ingest routes do. A body
that is not JSON at all on a route that takes JSON is refused with 415 before parsing, and one
holding a string PostgreSQL cannot store (NUL, a lone surrogate) with 422 naming its path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from monitor.errors import UnsupportedMediaType
from monitor.ingest.decode import JSON, loads_json, media_type
from monitor.ingest.text import require_storable


class MonitorRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_json(await self.body())  # raises json.JSONDecodeError
        return self._json


class MonitorRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_json = self.body_field is not None

        async def route(request: Request) -> Response:
            ours = MonitorRequest(request.scope, request.receive)
            if takes_json:
                await _require_json(ours)  # reads the body: ``ours`` keeps it for the handler
                await _require_storable(ours)
            return await handler(ours)

        return route


async def _require_storable(request: MonitorRequest) -> None:
    if not await request.body():
        return
    try:
        doc = await request.json()
    except json.JSONDecodeError:
        return  # FastAPI parses it again and answers malformed_body with the position
    require_storable(doc)


async def _require_json(request: Request) -> None:
    kind = media_type(request.headers.get("content-type"))
    if kind != JSON and not kind.endswith("+json") and await request.body():
        raise UnsupportedMediaType(
            f"content type {kind or '(none)'!r} is not accepted; send {JSON}"
        )
