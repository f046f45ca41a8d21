"""The SDK: never blocks or raises into the caller, batches, retries, loses nothing acknowledged."""

from __future__ import annotations

import time

import httpx
import orjson

from monitor.api.app import create_app
from monitor.client import MonitorClient
from monitor.services import Services
from tests.api.helpers import count
from tests.support.appserver import free_port, start_app


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
