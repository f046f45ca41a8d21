"""The ``monitor consume`` process: killed mid-stream, stopped with SIGTERM, the database down."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.config import Settings
from monitor.embedded import EmbeddedPostgres
from monitor.services import Services, build_services
from monitor.storage import migrate
from tests.api.helpers import count, record
from tests.conftest import reachable_tmp_dir
from tests.consume.brokers import Broker
from tests.consume.conftest import drain, make_consumer, source_options, started

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def consume_process(
    broker: Broker, topic: str, db_url: str, metrics_port: int = 0
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MONITOR_DATABASE_URL": db_url, "PYTHONPATH": str(REPO)}
    command = [
        sys.executable, "-m", "monitor", "consume", "--source", broker.url, "--topic", topic,
        "--group", "g", "--consumer", "c1", "--batch-size", "50", "--ack-wait", "1",
        "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for(what: str, done: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.slow
def test_killed_mid_stream_then_restarted_stores_every_message_exactly_once(
    broker: Broker, topic: str, services: Services, db_url: str
) -> None:
    n = 4000
    values = [orjson.dumps(record(i, prediction_id=None)) for i in range(n)]
    asyncio.run(broker.publish_many(topic, values))
    process = consume_process(broker, topic, db_url)
    try:
        wait_for("the first batches", lambda: count(services.engine, "predictions") > 0)
    finally:
        process.kill()  # SIGKILL: no cleanup, no last ack
        process.wait()
    at_kill = count(services.engine, "predictions")
    assert 0 < at_kill < n, "the kill did not land mid-stream"

    async def restart() -> None:
        source = await started(source_options(broker, topic))
        consumer = make_consumer(source, services.ingest, CollectorRegistry())
        await drain(consumer, lambda: count(services.engine, "predictions") >= n, 60)
        # what the killed process had committed but not acked comes back after the ack wait
        deadline = time.monotonic() + 30
        while await broker.unacked(topic, "g"):
            assert time.monotonic() < deadline, "redelivered messages were never acked"
            await consumer.step()
        await source.close()

    asyncio.run(restart())
    assert count(services.engine, "predictions") == n
    assert count(services.engine, "prediction_keys") == n


def test_sigterm_finishes_the_batch_acks_it_and_exits_cleanly(
    broker: Broker, topic: str, services: Services, db_url: str
) -> None:
    n = 300
    asyncio.run(broker.publish_many(topic, [orjson.dumps(record(i)) for i in range(n)]))
    port = free_port()
    process = consume_process(broker, topic, db_url, metrics_port=port)
    try:
        wait_for("all rows", lambda: count(services.engine, "predictions") == n)
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    finally:
        process.kill()
    assert process.returncode == 0, output
    assert asyncio.run(broker.unacked(topic, "g")) == 0
    assert f'monitor_consumer_messages_total{{source="{broker.kind}",topic="{topic}"}}' in body
    assert f'monitor_ingest_rows_total{{kind="consumer_{broker.kind}"}} {n}.0' in body
    assert "ml_feature_drift_score" not in body  # results are the service's to export


@pytest.fixture
def own_server() -> Iterator[EmbeddedPostgres]:
    """A cluster of this test's own, so it can be stopped without hurting other tests."""
    server = EmbeddedPostgres(reachable_tmp_dir("mm-consume-down-"))
    server.url = server.ensure_running()
    yield server
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)


def test_database_down_holds_the_batch_unacked_and_stores_it_once_back_up(
    broker: Broker, topic: str, own_server: EmbeddedPostgres
) -> None:
    settings = Settings(database_url=own_server.url, api_tokens=[])
    svc = build_services(settings, own_server.url, registry=CollectorRegistry())
    migrate.upgrade(svc.engine)
    registry = CollectorRegistry()
    retries = {"source": broker.kind, "reason": "database_unavailable"}

    async def scenario() -> None:
        await broker.publish_many(topic, [orjson.dumps(record(i)) for i in range(3)])
        source = await started(source_options(broker, topic, ack_wait_seconds=60.0))
        consumer = make_consumer(source, svc.ingest, registry)
        own_server.stop()
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        while not registry.get_sample_value("monitor_consumer_retries_total", retries):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert await broker.unacked(topic, "g") == 3  # held, not acked, not dropped
        await asyncio.to_thread(own_server.ensure_running)
        while await broker.unacked(topic, "g"):
            assert not task.done()
            await asyncio.sleep(0.1)
        stop.set()
        await task
        await source.close()

    asyncio.run(scenario())
    assert count(svc.engine, "predictions") == 3
    assert registry.get_sample_value("monitor_consumer_retries_total", retries) >= 1
    svc.engine.dispose()
