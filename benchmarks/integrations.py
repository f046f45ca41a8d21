"""Integration throughput: each receiver against POST /v1/predictions on the same rows, one run.

    python benchmarks/integrations.py                 # 100k rows, 100 rows per call
    python benchmarks/integrations.py --rows 20000 --call-rows 50

Prints rows/s of:

- native: ``POST /v1/predictions`` with the call's rows as one batch (the baseline);
- KServe binary mode: one CloudEvent for the request and one for the response per call, so the
  pair is joined through ``integration_pending`` (two HTTP requests and two transactions);
- KServe batch mode: both halves of a call in one ``cloudevents-batch+json`` request;
- OTLP traces: protobuf exports of one GenAI span per row (vLLM's attributes), against native
  records carrying the same fields;
- ``monitor consume`` from a real Kafka-protocol broker (Tansu, from the dev extra): topics
  filled beforehand with the same rows as JSON records, and as Seldon Core 2 model topics
  (a protobuf request and response per call, joined in PostgreSQL); rows/s from the first row
  the consumer stores to the last, against native POSTs of as many rows per request as the
  consumer commits per transaction (``CONSUMER_BATCH`` messages);

each with its ratio to native on the same rows (goal: >= 0.5). Two concurrent clients, the
service in its own process (``monitor serve --no-scheduler``) on a scratch database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaProducer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from benchmarks.common import CATEGORICAL, NUMERIC, feature_arrays, scratch_database
from benchmarks.ingest import start_service
from monitor.consume.kafka_client import create_topics
from monitor.integrations import oip_proto
from tests.support.kafka import start_tansu

Request = tuple[str, dict[str, str], bytes]  # path, headers, body
Call = list[Request]  # the HTTP requests of one logged call, sent in order


def native_calls(rows: list[dict[str, Any]], per_call: int) -> list[Call]:
    return [
        [
            (
                "/v1/predictions",
                {"content-type": "application/json"},
                orjson.dumps({"predictions": rows[s : s + per_call]}),
            )
        ]
        for s in range(0, len(rows), per_call)
    ]


def feature_records(num: np.ndarray, cat: np.ndarray, model: str, start: datetime) -> list[Any]:
    return [
        {
            "prediction_id": f"{model}:{i}",
            "model": model,
            "timestamp": (start + timedelta(milliseconds=i)).isoformat(),
            "features": {
                **dict(zip(NUMERIC, num[i].tolist(), strict=True)),
                **dict(zip(CATEGORICAL, cat[i].tolist(), strict=True)),
            },
            "prediction": 1,
        }
        for i in range(len(num))
    ]


def kserve_calls(
    model: str, num: np.ndarray, cat: np.ndarray, per_call: int, start: datetime, batch: bool
) -> list[Call]:
    calls: list[Call] = []
    for c, s in enumerate(range(0, len(num), per_call)):
        instances = [
            [*num[i].tolist(), *cat[i].tolist()] for i in range(s, min(s + per_call, len(num)))
        ]
        ce_id = f"{model}-{c}"
        time_ = (start + timedelta(milliseconds=s)).isoformat()
        halves = [
            ("request", {"instances": instances}),
            ("response", {"predictions": [1] * len(instances)}),
        ]
        if batch:
            events = [
                {
                    "specversion": "1.0",
                    "id": ce_id,
                    "source": "http://localhost:9081/",
                    "type": f"org.kubeflow.serving.inference.{half}",
                    "time": time_,
                    "inferenceservicename": model,
                    "endpoint": "default",
                    "data": data,
                }
                for half, data in halves
            ]
            headers = {"content-type": "application/cloudevents-batch+json"}
            calls.append([("/v1/integrations/kserve", headers, orjson.dumps(events))])
            continue
        calls.append(
            [
                (
                    "/v1/integrations/kserve",
                    {
                        "content-type": "application/json",
                        "ce-specversion": "1.0",
                        "ce-id": ce_id,
                        "ce-type": f"org.kubeflow.serving.inference.{half}",
                        "ce-source": "http://localhost:9081/",
                        "ce-time": time_,
                        "ce-inferenceservicename": model,
                        "ce-endpoint": "default",
                    },
                    orjson.dumps(data),
                )
                for half, data in halves
            ]
        )
    return calls


def _attr(key: str, value: float | int | str) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(double_value=value))


def llm_calls(
    model: str, n: int, per_call: int, start: datetime
) -> tuple[list[Call], list[dict[str, Any]]]:
    """OTLP exports of ``per_call`` vLLM-like spans each, and the same rows as native records."""
    rng = np.random.default_rng(1)
    calls: list[Call] = []
    records: list[dict[str, Any]] = []
    for s in range(0, n, per_call):
        spans = []
        for i in range(s, min(s + per_call, n)):
            begin = int((start + timedelta(milliseconds=i)).timestamp() * 1e9)
            tokens_in, tokens_out = int(rng.integers(50, 2000)), int(rng.integers(10, 500))
            ttft, e2e = float(rng.uniform(0.05, 0.5)), float(rng.uniform(0.5, 5.0))
            temperature = float(rng.choice([0.0, 0.7, 1.0]))
            attrs = {
                "gen_ai.response.model": model,
                "gen_ai.request.temperature": temperature,
                "gen_ai.request.max_tokens": 512,
                "gen_ai.usage.prompt_tokens": tokens_in,
                "gen_ai.usage.completion_tokens": tokens_out,
                "gen_ai.latency.time_to_first_token": ttft,
                "gen_ai.latency.e2e": e2e,
            }
            spans.append(
                Span(
                    trace_id=i.to_bytes(16, "big"),
                    span_id=(i + 1).to_bytes(8, "big"),
                    name="llm_request",
                    start_time_unix_nano=begin,
                    end_time_unix_nano=begin + int(e2e * 1e9),
                    attributes=[_attr(k, v) for k, v in attrs.items()],
                )
            )
            records.append(
                {
                    "prediction_id": f"native-{i}",
                    "model": f"{model}-native",
                    "timestamp": datetime.fromtimestamp(begin / 1e9, UTC).isoformat(),
                    "features": {
                        "gen_ai.request.temperature": temperature,
                        "gen_ai.request.max_tokens": 512,
                    },
                    "latency_ms": e2e * 1000,
                    "tokens_in": tokens_in,
                    "tokens_out": tokens_out,
                    "time_to_first_token_ms": ttft * 1000,
                }
            )
        body = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
        ).SerializeToString()
        calls.append([("/otlp/v1/traces", {"content-type": "application/x-protobuf"}, body)])
    return calls, records


def send(base: str, calls: Sequence[Call], workers: int = 2) -> float:
    """Seconds to send every call, ``workers`` clients in parallel, each call's requests in
    order."""
    errors: list[str] = []

    def worker(chunk: Sequence[Call]) -> None:
        with httpx.Client(base_url=base, timeout=120) as http:
            for call in chunk:
                for path, headers, body in call:
                    r = http.post(path, headers=headers, content=body)
                    if r.status_code != 200:
                        errors.append(f"{path}: {r.status_code} {r.text[:300]}")
                        return

    threads = [threading.Thread(target=worker, args=(calls[i::workers],)) for i in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return time.perf_counter() - t0


def stored(url: str, model: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM predictions p JOIN models m ON m.id = p.model_id "
            "WHERE m.name = %s",
            (model,),
        ).fetchone()
    return int(row[0]) if row else 0


Figure = tuple[str, float, float]  # name, rows/s, ratio to its native baseline


def measure(
    base: str, url: str, n: int, name: str, calls: list[Call], model: str, native: float
) -> Figure:
    seconds = send(base, calls)
    count = stored(url, model)
    if count != n:
        raise RuntimeError(f"{name}: stored {count} of {n} rows")
    return name, n / seconds, (n / seconds) / native


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--call-rows", type=int, default=100, help="rows per logged call")
    args = parser.parse_args()
    n, per_call = args.rows, args.call_rows
    num, cat = feature_arrays(n)
    start = datetime.now(UTC) - timedelta(hours=1)
    print(
        f"integrations benchmark: {n:,} rows, {per_call} rows per call, "
        f"{len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical features, 2 clients"
    )
    figures: list[Figure] = []
    with scratch_database("mm_bench_integ") as url:
        proc, base = start_service(url)
        try:
            for model in ("kserve-binary", "kserve-batch"):
                r = httpx.put(
                    f"{base}/v1/models/{model}", json={"input_names": NUMERIC + CATEGORICAL}
                )
                r.raise_for_status()
            native_rows = feature_records(num, cat, "native", start)
            t_native = send(base, native_calls(native_rows, per_call))
            native = n / t_native
            figures.append(("native POST /v1/predictions (features)", native, 1.0))
            for name, model, batch in (
                ("KServe binary mode (2 requests a call)", "kserve-binary", False),
                ("KServe batch mode (1 request a call)", "kserve-batch", True),
            ):
                calls = kserve_calls(model, num, cat, per_call, start, batch)
                figures.append(measure(base, url, n, name, calls, model, native))
            otlp, llm_native = llm_calls("vllm-llama", n, per_call, start)
            t_llm_native = send(base, native_calls(llm_native, per_call))
            llm_rate = n / t_llm_native
            figures.append(("native POST /v1/predictions (LLM rows)", llm_rate, 1.0))
            figures.append(
                measure(base, url, n, "OTLP traces, protobuf", otlp, "vllm-llama", llm_rate)
            )
            figures += consumer_figures(base, url, num, cat, per_call, start)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    for name, rate, ratio in figures:
        print(f"{name:<58} {rate:>10,.0f} rows/s   ratio to native {ratio:.2f}")


# --- the broker consumer (monitor consume) ---------------------------------------------------


def kafka_records(records: list[dict[str, Any]], per_call: int) -> list[bytes]:
    """Messages of ``per_call`` of our JSON records each."""
    return [
        orjson.dumps({"predictions": records[s : s + per_call]})
        for s in range(0, len(records), per_call)
    ]


def seldon_messages(
    model: str, num: np.ndarray, cat: np.ndarray, per_call: int
) -> list[tuple[str, bytes, bytes, dict[str, str]]]:
    """``(half, key, value, headers)``: each call's protobuf request and response, as Seldon's
    gateways write them (one V2 tensor per feature, so no input order need be declared)."""
    request_class, response_class = oip_proto.request_class(), oip_proto.response_class()
    out: list[tuple[str, bytes, bytes, dict[str, str]]] = []
    for c, s in enumerate(range(0, len(num), per_call)):
        rows = slice(s, min(s + per_call, len(num)))
        rid = f"{model}-{c}"
        req = request_class(model_name=model)
        for j, name in enumerate(NUMERIC):
            t = req.inputs.add(name=name, datatype="FP64", shape=[rows.stop - s])
            t.contents.fp64_contents.extend(num[rows, j].tolist())
        for j, name in enumerate(CATEGORICAL):
            t = req.inputs.add(name=name, datatype="BYTES", shape=[rows.stop - s])
            t.contents.bytes_contents.extend(v.encode() for v in cat[rows, j].tolist())
        resp = response_class(model_name=model, id=rid)
        t = resp.outputs.add(name="predict", datatype="INT64", shape=[rows.stop - s, 1])
        t.contents.int64_contents.extend([1] * (rows.stop - s))
        headers = {"x-request-id": rid, "pipeline": model}
        key = f"{model}.{rid}".encode()
        out += [
            ("inputs", key, req.SerializeToString(), headers),
            ("outputs", key, resp.SerializeToString(), headers),
        ]
    return out


async def produce(
    bootstrap: str, messages: list[tuple[str, bytes | None, bytes, dict[str, str]]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
            )
            for topic, key, value, headers in messages
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()


CONSUMER_BATCH = 10  # messages per transaction (of --call-rows rows each)


def consume_rate(
    url: str, source: str, topics: list[str], model: str, n: int, batch: int = CONSUMER_BATCH
) -> float:
    """Rows/s of a ``monitor consume`` process draining topics already filled, from its first
    stored row to its last (the process's start and group join are not counted)."""
    env = {**os.environ, "MONITOR_DATABASE_URL": url}
    command = [sys.executable, "-m", "monitor", "consume", "--source", source, "--group", "bench",
               "--metrics-port", "0", "--batch-size", str(batch)]  # fmt: skip
    for topic in topics:
        command += ["--topic", topic]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        first = 0
        while (done := stored(url, model)) == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "no rows")
            time.sleep(0.01)
        t0, first = time.perf_counter(), done
        while (done := stored(url, model)) < n:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{model}: {done} of {n} rows stored")
            time.sleep(0.05)
        if first == n:
            raise RuntimeError(f"{model}: all rows came in one batch; no rate (use more --rows)")
        return (n - first) / (time.perf_counter() - t0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def consumer_figures(
    base: str, url: str, num: np.ndarray, cat: np.ndarray, per_call: int, start: datetime
) -> list[Figure]:
    """``monitor consume`` from a real Kafka-protocol broker (Tansu): our JSON records, and
    Seldon Core 2 model topics (protobuf halves joined in PostgreSQL), against native POSTs of
    as many rows per request as the consumer commits per transaction."""
    n = len(num)
    rows_per_commit = CONSUMER_BATCH * per_call
    native_rows = feature_records(num, cat, "native-consumer", start)
    native = n / send(base, native_calls(native_rows, rows_per_commit))
    figures: list[Figure] = [
        (f"native POST /v1/predictions ({rows_per_commit:,} rows)", native, 1.0)
    ]
    broker = start_tansu()
    try:
        records = feature_records(num, cat, "consumer-kafka", start)
        topic = "bench.predictions"
        asyncio.run(create_topics(broker.bootstrap, [topic], partitions=2))
        asyncio.run(
            produce(
                broker.bootstrap, [(topic, None, v, {}) for v in kafka_records(records, per_call)]
            )
        )
        rate = consume_rate(url, broker.url, [topic], "consumer-kafka", n)
        figures.append(("monitor consume, Kafka (JSON records)", rate, rate / native))
        # Seldon: a call is two messages (request, response), so a transaction of CONSUMER_BATCH
        # messages holds half the rows of the baseline's request; with twice the messages it
        # holds as many. Both are measured, each on topics of its own.
        for batch, name in ((CONSUMER_BATCH, "half"), (2 * CONSUMER_BATCH, "same")):
            model = f"seldon-bench-{batch}"
            topics = {h: f"seldon.bench.model.{model}.{h}" for h in ("inputs", "outputs")}
            asyncio.run(create_topics(broker.bootstrap, list(topics.values()), partitions=2))
            messages = seldon_messages(model, num, cat, per_call)
            halves = [(topics[h], k, v, hd) for h, k, v, hd in messages]
            asyncio.run(produce(broker.bootstrap, halves))
            rate = consume_rate(url, broker.url, list(topics.values()), model, n, batch)
            label = f"monitor consume, Seldon topics, {batch} msgs/txn ({name} rows)"
            figures.append((label, rate, rate / native))
    finally:
        broker.stop()
    return figures


if __name__ == "__main__":
    main()
