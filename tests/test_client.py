"""The SDK: never blocks or raises into the caller, batches, retries, loses nothing acknowledged."""

from __future__ import annotations

import socket
import time

import httpx
import orjson
from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from monitor.api.app import create_app
from monitor.client import MonitorClient
from monitor.services import Services
from tests.api.helpers import count
from tests.support.appserver import AppServer, free_port, start_app


def test_log_never_raises_when_the_server_is_unreachable() -> None:
    client = MonitorClient(
        f"http://127.0.0.1:{free_port()}", flush_interval=0.05, max_queue=100, max_backoff=0.05
    )
    for i in range(150):
        client.log("m", {"x": i}, 0.1)
    assert client.stats.dropped == 50  # the queue is bounded; the rest waits for the server
    assert not client.flush(timeout=0.3)
    client.close(timeout=0.1)
    assert client.stats.sent == 0
    assert client.stats.dropped == 150


def test_retries_on_503_then_delivers_the_same_ids() -> None:
    seen: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids = [r["prediction_id"] for r in orjson.loads(request.content)["predictions"]]
        seen.append(ids)
        if len(seen) < 3:
            return httpx.Response(503, headers={"Retry-After": "1"})
        return httpx.Response(200, json={"received": len(ids), "stored": len(ids)})

    client = MonitorClient(
        "http://monitor.test",
        transport=httpx.MockTransport(handler),
        flush_interval=0.01,
        max_backoff=0.01,
    )
    pids = [client.log("m", {"x": i}) for i in range(10)]
    assert client.flush(timeout=5)
    client.close()
    assert seen == [pids, pids, pids]
    assert client.stats.retries == 2
    assert client.stats.sent == 10


def test_rejected_records_are_dropped_and_the_rest_sent() -> None:
    bodies: list[list[dict[str, object]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        batch = orjson.loads(request.content)["predictions"]
        bodies.append(batch)
        bad = [i for i, r in enumerate(batch) if r["features"]["x"] == "bad"]
        if bad:
            details = [{"index": i, "field": "features.x", "problem": "x"} for i in bad]
            return httpx.Response(
                422,
                json={"error": {"code": "validation_failed", "message": "m", "details": details}},
            )
        return httpx.Response(200, json={})

    client = MonitorClient(
        "http://monitor.test", transport=httpx.MockTransport(handler), flush_interval=0.01
    )
    client.log("m", {"x": 1})
    client.log("m", {"x": "bad"})
    client.log("m", {"x": 3})
    assert client.flush(timeout=5)
    client.close()
    assert [len(b) for b in bodies] == [3, 2]
    assert client.stats.rejected == 1
    assert client.stats.sent == 2


def test_log_is_cheap() -> None:
    client = MonitorClient(f"http://127.0.0.1:{free_port()}", flush_interval=60)
    start = time.perf_counter()
    for i in range(10_000):
        client.log("m", {"x": i}, 0.5, latency_ms=3.0)
    elapsed = time.perf_counter() - start
    client.close(timeout=0.1)
    assert elapsed < 5  # a sanity bound only; benchmarks/ingest.py measures the real figure


def test_delivery_through_a_real_server(services: Services) -> None:
    server = start_app(create_app(services))
    try:
        with MonitorClient(server.url, batch_size=500, flush_interval=0.05) as client:
            for i in range(3000):
                client.log("sdk", {"x": float(i), "c": "a"}, 0.5, latency_ms=1.0)
            assert client.flush(timeout=30)
            client.label("sdk", f"{client._prefix}-0", 1)
            assert client.flush(timeout=30)
        assert client.stats.sent == 3000
    finally:
        server.stop()
    assert count(services.engine, "predictions") == 3000
    assert count(services.engine, "labels") == 1


def test_server_restart_mid_stream_loses_nothing(services: Services) -> None:
    port = free_port()
    server = start_app(create_app(services), port=port)
    client = MonitorClient(server.url, batch_size=200, flush_interval=0.02, max_backoff=0.2)
    logged: list[str] = []
    for round_ in range(30):
        logged += [client.log("restart", {"x": float(i)}) for i in range(100)]
        time.sleep(0.01)
        if round_ == 10:
            server.stop()  # the service goes away mid-stream...
        if round_ == 20:
            server = start_app(create_app(services), port=port)  # ...and comes back
    assert client.flush(timeout=60)
    client.close()
    server.stop()
    assert client.stats.dropped == 0
    assert client.stats.sent == len(logged) == 3000
    assert count(services.engine, "predictions") == 3000
    assert count(services.engine, "prediction_keys") == 3000


class _RequestCounter:
    """ASGI middleware counting the POSTs that reach a path (server side, not the SDK's say)."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == "POST":
            self.count += 1
        await self.app(scope, receive, send)


def _counted_server(services: Services) -> tuple[AppServer, _RequestCounter]:
    app = create_app(services)
    counter = _RequestCounter(app, "/v1/predictions")
    return start_app(counter), counter


def test_a_steady_stream_is_sent_in_full_batches(services: Services) -> None:
    """20k records logged over ~2 s, 1,000 per batch: about 20 requests, not one per wake-up."""
    server, requests = _counted_server(services)
    try:
        client = MonitorClient(server.url, batch_size=1_000, flush_interval=1.0)
        for i in range(20_000):
            client.log("steady", {"x": float(i), "c": "a"}, 0.5)
            if i % 10 == 9:  # a model server logs as it answers, a few records at a time
                time.sleep(0.001)
        assert client.flush(timeout=60)
        client.close()
    finally:
        server.stop()
    assert client.stats.sent == 20_000
    assert count(services.engine, "predictions") == 20_000
    assert requests.count <= 25, f"{requests.count} requests for 20,000 records"
    assert client.stats.batches == requests.count


def test_a_partial_batch_leaves_once_its_oldest_record_waited_flush_interval(
    services: Services,
) -> None:
    server, requests = _counted_server(services)
    try:
        client = MonitorClient(server.url, batch_size=1_000, flush_interval=0.3)
        for i in range(10):
            client.log("partial", {"x": float(i)})
        deadline = time.monotonic() + 15
        while count(services.engine, "predictions") < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        client.close()
    finally:
        server.stop()
    assert count(services.engine, "predictions") == 10
    assert requests.count == 1


def test_close_returns_within_its_timeout_when_the_server_never_answers() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        client = MonitorClient(f"http://127.0.0.1:{port}", flush_interval=0.05)
        for i in range(100):
            client.log("m", {"x": i})
        time.sleep(0.2)  # a request is in flight, waiting for an answer that never comes
        started = time.monotonic()
        client.close(timeout=1)
        elapsed = time.monotonic() - started
    assert elapsed < 3, f"close(timeout=1) took {elapsed:.1f} s"
    assert client.stats.sent == 0
    assert client.stats.dropped == 100


def _poison_server() -> tuple[AppServer, list[int]]:
    """A receiver that fails (500) on any batch holding the poison record, like a server whose
    database refuses one value; it acknowledges every other batch."""
    app = FastAPI()
    stored: list[int] = []

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/predictions")
    async def receive(request: Request) -> Response:
        batch = orjson.loads(await request.body())["predictions"]
        if any("poison" in r["features"] for r in batch):
            return Response(status_code=500)
        stored.extend(int(r["features"]["x"]) for r in batch)
        return Response(b"{}", media_type="application/json")

    return start_app(app), stored


def test_a_record_the_server_keeps_failing_on_is_dropped_and_the_rest_delivered() -> None:
    server, stored = _poison_server()
    try:
        client = MonitorClient(
            server.url, batch_size=64, flush_interval=0.05, max_backoff=0.01, max_attempts=2
        )
        for i in range(64):
            client.log("m", {"x": i, "poison": 1} if i == 37 else {"x": i})
        assert client.flush(timeout=30), "the batch is still blocked on its poison record"
        client.close()
    finally:
        server.stop()
    assert sorted(stored) == [i for i in range(64) if i != 37]
    assert client.stats.sent == 63
    assert client.stats.failed == 1
    assert client.stats.dropped == 0


def test_a_record_json_cannot_carry_is_rejected_and_the_rest_delivered(
    services: Services,
) -> None:
    server = start_app(create_app(services))
    try:
        client = MonitorClient(server.url, batch_size=50, flush_interval=0.05)
        for i in range(50):
            client.log("m", {"x": float(i), "y": object() if i == 5 else 1.0})
        assert client.flush(timeout=30)
        client.close()
    finally:
        server.stop()
    assert client.stats.sent == 49
    assert client.stats.rejected == 1
    assert count(services.engine, "predictions") == 49


def test_a_nul_character_in_one_record_does_not_block_its_batch(services: Services) -> None:
    """PostgreSQL cannot store U+0000: the server answers 422 naming the records, the client
    drops just those (``rejected``, never retried as a 5xx would be) and the rest is stored."""
    server = start_app(create_app(services))
    try:
        client = MonitorClient(
            server.url, batch_size=40, flush_interval=0.05, max_backoff=0.01, max_attempts=2
        )
        for i in range(40):
            extra = {"request": {"path": "/x\x00"}} if i == 29 else {}
            client.log("nul", {"x": float(i), "c": "a\x00b" if i == 11 else "a"}, **extra)
        assert client.flush(timeout=30), "the batch is still blocked on its NUL record"
        client.close()
    finally:
        server.stop()
    assert client.stats.sent == 38
    assert (client.stats.rejected, client.stats.failed) == (2, 0)
    assert count(services.engine, "predictions") == 38
