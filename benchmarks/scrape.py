"""Scrape time of /metrics with many result series.

    python benchmarks/scrape.py                  # 100 models x 20 features x 2 windows
    python benchmarks/scrape.py --models 300 --scrapes 100

Fills ``latest_results`` as the jobs would (per feature: drift score and PSI, p-value for the
tests, verdict, missing and out-of-range or new-category ratios; per model and window: latency
quantiles, throughput, errors, load time, performance, cost, sample counts, dataset, prediction
and label drift), then times

- ``GET /metrics`` through the ASGI app, as Prometheus sees it, within the collector's cache TTL;
- the exposition with the cache expired: the scrape that reads and renders everything again;
- ``generate_latest(registry)``, prometheus_client formatting every sample on every scrape,
  which is what the cached exposition avoids.

Prints p50/p95 of each and the number of series. The database is created for the run and
dropped after: on the server of MONITOR_BENCH_DATABASE_URL (an admin URL), or on the embedded
PostgreSQL under MONITOR_DATA_DIR when that variable is unset.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine

from monitor.api.app import create_app
from monitor.config import Settings
from monitor.exporter import ResultsCollector, exposition
from monitor.runtime import database_url
from monitor.services import build_services
from monitor.storage import migrate
from monitor.storage.databases import scratch_database
from monitor.storage.engine import libpq_url, make_engine
from monitor.storage.models import ModelStore
from monitor.storage.results import Result, write_results


@contextmanager
def admin_url() -> Iterator[str]:
    configured = os.environ.get("MONITOR_BENCH_DATABASE_URL")
    if configured:
        yield libpq_url(configured)
        return
    with database_url(Settings(database_url=None)) as url:
        yield libpq_url(url)


def feature_results(window: str, f: int) -> list[Result]:
    """What the drift and quality jobs write per feature: the method's score and PSI, a
    p-value for the tests, the verdict, missing values, and a range or category check."""
    feature = {"feature": f"feature_{f:02d}"}
    numeric = f % 3 != 0
    method = ("ks" if f % 2 else "wasserstein") if numeric else "chisquare"
    rows = [
        Result("1.0", window, "feature_drift_score", 0.05 + f / 100, {**feature, "method": method}),
        Result("1.0", window, "feature_drift_score", 0.02, {**feature, "method": "psi"}),
        Result("1.0", window, "feature_drift_detected", float(f % 7 == 0), feature),
        Result("1.0", window, "feature_missing_ratio", 0.001 * f, feature),
        Result(
            "1.0",
            window,
            "feature_out_of_range_ratio" if numeric else "feature_new_category_ratio",
            0.01,
            feature,
        ),
    ]
    if method in ("ks", "chisquare"):
        rows.append(
            Result("1.0", window, "feature_drift_pvalue", 0.2, {**feature, "method": method})
        )
    return rows


def model_results(window: str, features: int) -> list[Result]:
    rows = [r for f in range(features) for r in feature_results(window, f)]
    serving = {"variant": "production"}
    rows += [
        Result(
            "1.0", window, "prediction_latency_seconds", 0.02 * (i + 1), {**serving, "quantile": q}
        )
        for i, q in enumerate(("0.5", "0.95", "0.99"))
    ]
    rows += [
        Result("1.0", window, "predictions_per_second", 12.5, serving),
        Result("1.0", window, "prediction_error_ratio", 0.003, serving),
        Result("1.0", window, "model_load_seconds", 31.0, serving),
        Result("1.0", window, "dataset_drift_share", 0.1, {}),
        Result("1.0", window, "prediction_drift_score", 0.04, {"method": "wasserstein"}),
        Result("1.0", window, "label_drift_score", 0.01, {"method": "ztest"}),
        Result("", window, "cost_per_million_predictions", 41.0, {"currency": "USD"}),
    ]
    rows += [
        Result("1.0", window, "model_performance", 0.9, {"metric": m})
        for m in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
    ]
    rows += [
        Result("1.0", window, "window_samples", 5000.0, {"metric": m})
        for m in ("drift", "quality", "serving", "performance", "cost")
    ]
    return rows


def fill(engine: Engine, models: int, features: int, windows: list[str]) -> None:
    store = ModelStore(engine)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    with engine.begin() as conn:
        for m in range(models):
            record = store.ensure_in(conn, f"model_{m:03d}")
            rows = [r for w in windows for r in model_results(w, features)]
            write_results(conn, record.id, end, rows)


def timings(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    ms = sorted(s * 1000 for s in seconds)
    return statistics.median(ms), ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--windows", default="1h,24h")
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    windows = args.windows.split(",")

    with admin_url() as admin, scratch_database(admin, "mm_scrape") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        fill(engine, args.models, args.features, windows)
        settings = Settings(database_url=url, data_dir=Path("/nonexistent"))
        services = build_services(settings, url, registry=CollectorRegistry(), engine=engine)
        with TestClient(create_app(services)) as client:
            body = client.get("/metrics").text
            series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
            warm = timings(lambda: client.get("/metrics"), args.scrapes)
        uncached = ResultsCollector(services.db, ttl_seconds=0)
        cold = timings(lambda: exposition(services.registry, uncached), args.scrapes)
        # what the service runs: past the TTL the last read is served while a thread reads anew
        stale = ResultsCollector(services.db, ttl_seconds=0, serve_stale=True)
        exposition(services.registry, stale)
        swr = timings(lambda: exposition(services.registry, stale), args.scrapes)
        slow = timings(lambda: generate_latest(services.registry), max(5, args.scrapes // 5))
        engine.dispose()

    print(
        f"{args.models} models x {args.features} features x {len(windows)} windows: "
        f"{series} series, {len(body) / 1e6:.2f} MB"
    )
    print(f"GET /metrics (cached results):      p50 {warm[0]:6.1f} ms   p95 {warm[1]:6.1f} ms")
    print(f"exposition, cache expired (read):   p50 {cold[0]:6.1f} ms   p95 {cold[1]:6.1f} ms")
    print(f"exposition, expired, served stale:  p50 {swr[0]:6.1f} ms   p95 {swr[1]:6.1f} ms")
    print(f"generate_latest(registry):          p50 {slow[0]:6.1f} ms   p95 {slow[1]:6.1f} ms")


if __name__ == "__main__":
    main()
