"""The runner: idempotent re-runs, failure isolation, job health, the HTTP and CLI entries."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, text

from monitor.api.app import create_app
from monitor.commands import JobsFailed, run_jobs_cli
from monitor.config import Settings
from monitor.errors import NotFound, ValidationFailed
from monitor.jobs.base import JOB_NAMES, JobContext, Window
from monitor.jobs.registry import DEFAULT_PATHS, default_registry
from monitor.jobs.runner import run_jobs
from monitor.services import Services, build_services
from monitor.storage.models import ModelRecord
from monitor.storage.results import Result
from tests.jobs.helpers import at, configure, latest, predictions, window_end


def _results(engine: Engine, table: str = "results") -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    f'SELECT model_id, model_version, "window", metric, labels::text, window_end, '
                    f"value, details::text FROM {table} ORDER BY 1, 2, 3, 4, 5, 6"
                )
            )
        ]


def _job_state(services: Services) -> dict[str, tuple[int, int, bool]]:
    with services.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT job, runs_total, failures_total, last_success_at IS NOT NULL FROM job_state"
            )
        )
        return {job: (runs, failures, succeeded) for job, runs, failures, succeeded in rows}


@pytest.fixture
def traffic(services: Services) -> None:
    end = window_end()
    for model in ("a", "b"):
        predictions(
            services,
            model,
            [
                {"timestamp": at(end, 2 + i), "latency_ms": 5.0 * i, "prediction": 0.1 * i}
                for i in range(10)
            ],
        )


def test_registry_names_every_job_and_loads_lazily() -> None:
    assert tuple(DEFAULT_PATHS) == JOB_NAMES
    registry = default_registry()
    assert registry["serving"].__name__ == "run_serving"  # type: ignore[attr-defined]


@pytest.mark.usefixtures("traffic")
def test_rerunning_in_the_same_minute_changes_nothing(services: Services) -> None:
    end = window_end()
    first = run_jobs(services, None, "serving", now=end + timedelta(seconds=5))
    assert first.failures == 0
    assert first.window_end == end
    before = _results(services.engine), _results(services.engine, "latest_results")
    again = run_jobs(services, None, "serving", now=end + timedelta(seconds=50))
    assert again.window_end == end
    assert (_results(services.engine), _results(services.engine, "latest_results")) == before
    assert [o.results for o in again.outcomes] == [o.results for o in first.outcomes]


def _flaky(ctx: JobContext, model: ModelRecord, window: Window) -> list[Result]:
    if model.name == "a":
        raise RuntimeError("boom for a")
    return [Result("", window.name, "custom_figure", 1.0)]


@pytest.mark.usefixtures("traffic")
def test_a_failing_model_is_counted_and_logged_and_the_others_still_run(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        report = run_jobs(services, None, "flaky", now=window_end(), jobs={"flaky": _flaky})
    assert report.failures == 1
    by_model = {o.model: o for o in report.outcomes}
    assert by_model["a"].error == "RuntimeError: boom for a"
    assert by_model["b"].ok
    assert by_model["b"].results == 2
    assert "boom for a" in caplog.text
    assert "job flaky failed for model a" in caplog.text
    assert _job_state(services) == {"flaky": (1, 1, False)}
    assert {k[0] for k in latest(services)} == {"custom_figure"}

    run_jobs(services, "b", "flaky", now=window_end(), jobs={"flaky": _flaky})
    assert _job_state(services) == {"flaky": (2, 1, True)}


def test_a_job_that_cannot_be_imported_fails_every_model(services: Services) -> None:
    configure(services, "a")
    report = run_jobs(services, None, "x", jobs={"x": "monitor.jobs.nonexistent:run"})
    assert report.failures == 1
    assert "ModuleNotFoundError" in (report.outcomes[0].error or "")
    assert _job_state(services)["x"] == (1, 1, False)


def test_series_the_latest_run_did_not_produce_are_no_longer_latest(services: Services) -> None:
    configure(services, "m", windows=["1h"])
    versions = iter([["1.0", "2.0"], ["2.0"]])
    jobs = {"j": lambda s, m, w: [Result(v, w.name, "custom_figure", 1.0) for v in next(versions)]}
    end = window_end()
    run_jobs(services, "m", "j", now=end - timedelta(minutes=1), jobs=jobs)
    run_jobs(services, "m", "j", now=end, jobs=jobs)
    assert [k[1] for k in latest(services)] == ["2.0"]
    assert len(_results(services.engine)) == 3  # the history keeps everything


def test_windows_come_from_the_model_then_the_settings(services: Services) -> None:
    configure(services, "m", windows=["15m", "7d"])
    configure(services, "n")
    report = run_jobs(services, None, "j", jobs={"j": lambda s, m, w: []})
    assert {o.model: o.windows for o in report.outcomes} == {
        "m": ("15m", "7d"),
        "n": ("1h", "24h"),
    }


def test_unknown_job_or_model_is_refused(services: Services) -> None:
    with pytest.raises(ValidationFailed):
        run_jobs(services, None, "nope")
    with pytest.raises(NotFound):
        run_jobs(services, "ghost", "serving")


@pytest.mark.usefixtures("traffic")
def test_http_run_answers_with_the_report(client: TestClient) -> None:
    r = client.post("/v1/jobs/run", params={"model": "a", "job": "serving"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["failures"] == 0
    assert [(run["job"], run["model"], run["status"]) for run in body["runs"]] == [
        ("serving", "a", "ok")
    ]
    assert body["runs"][0]["results"] > 0
    summary = client.get("/v1/models/a").json()["results"]
    assert summary["window_end"] == body["window_end"]
    assert summary["windows"]["1h"]["window_samples"][0]["value"] == 10


def test_http_errors_use_the_spec_format(client: TestClient) -> None:
    r = client.post("/v1/jobs/run", params={"job": "nope"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_failed"
    assert r.json()["error"]["details"][0]["field"] == "job"
    r = client.post("/v1/jobs/run", params={"model": "ghost"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


@pytest.fixture
def secured(db_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=db_url, data_dir=Path("/nonexistent"), api_tokens=["s3cret"])
    svc = build_services(settings, db_url, registry=CollectorRegistry())
    with TestClient(create_app(svc)) as client:
        yield client
    svc.engine.dispose()


def test_http_run_needs_a_writer_token(secured: TestClient) -> None:
    assert secured.post("/v1/jobs/run").status_code == 401
    ok = secured.post("/v1/jobs/run", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert ok.json()["runs"] == []


@pytest.mark.usefixtures("traffic")
def test_cli_prints_a_table_and_fails_loudly(settings: Settings) -> None:
    out = run_jobs_cli(settings, model="a", job="serving")
    assert out.splitlines()[0].split() == [
        "JOB",
        "MODEL",
        "WINDOWS",
        "STATUS",
        "RESULTS",
        "SECONDS",
    ]
    assert out.splitlines()[1].split()[:4] == ["serving", "a", "1h,24h", "ok"]
    with pytest.raises(NotFound):
        run_jobs_cli(settings, model="ghost", job=None)
    with pytest.raises(JobsFailed):
        run_jobs_cli(settings.model_copy(update={"windows": ["oops"]}), model="a", job="cost")


def test_cli_says_no_reference_is_set_instead_of_a_bare_ok(
    settings: Settings, services: Services
) -> None:
    configure(services, "plain")
    out = run_jobs_cli(settings, model="plain", job="drift")
    assert out.splitlines()[1].split()[:4] == ["drift", "plain", "1h,24h", "ok"]
    assert "no reference set for model 'plain'" in out


def test_the_model_config_is_parsed_once_with_its_defaults(services: Services) -> None:
    configure(services, "m", windows=["1h"], drift={"psi_bins": 7})
    record = services.models.require("m")
    assert record.options.windows == ["1h"]
    assert record.options.drift.psi_bins == 7
    assert record.options.drift.min_samples == 100  # the DriftSettings default
    assert record.options.webhook is None
    assert record.options.slo.latency_ms == 500.0


@pytest.mark.usefixtures("traffic")
def test_a_model_whose_stored_config_is_invalid_fails_alone(services: Services) -> None:
    with services.engine.begin() as conn:
        conn.execute(
            text("UPDATE models SET config = :c WHERE name = 'a'"),
            {"c": '{"drift": {"psi_bins": "many"}}'},
        )
    services.models.invalidate("a")
    report = run_jobs(services, None, "serving", now=window_end())
    by_model = {o.model: o for o in report.outcomes}
    assert by_model["b"].ok
    assert by_model["a"].windows == ()
    assert (by_model["a"].error or "").startswith(
        "ConfigError: model 'a': the stored configuration is invalid"
    )
    assert "psi_bins" in (by_model["a"].error or "")
