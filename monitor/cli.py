"""The ``monitor`` command line.

Heavy modules are imported inside the commands, so ``--help`` stays quick.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.shutdown import Terminated, sigterm_raises

app = typer.Typer(
    help="ml-monitor: monitoring and drift detection for ML models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dashboards_app = typer.Typer(help="Grafana dashboards (dashboards/).", no_args_is_help=True)
alerts_app = typer.Typer(
    help="Prometheus alert rules and Alertmanager config (alerts/).", no_args_is_help=True
)
grafana_app = typer.Typer(help="Push everything to a Grafana server.", no_args_is_help=True)
jobs_app = typer.Typer(help="Scheduled computations.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for the write endpoints.", no_args_is_help=True)
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(alerts_app, name="alerts")
app.add_typer(grafana_app, name="grafana")
app.add_typer(jobs_app, name="jobs")
app.add_typer(tokens_app, name="tokens")

REPO_ROOT = Path(__file__).resolve().parent.parent


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default MONITOR_HOST (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="default MONITOR_PORT (8000)")] = None,
    no_scheduler: Annotated[bool, typer.Option("--no-scheduler", help="API only")] = False,
    no_migrate: Annotated[bool, typer.Option("--no-migrate")] = False,
    otlp_grpc_port: Annotated[
        int | None,
        typer.Option(help="also OTLP/gRPC on this port, e.g. 4317 (MONITOR_OTLP_GRPC_PORT)"),
    ] = None,
) -> None:
    """HTTP API + scheduler in one process (embedded PostgreSQL without MONITOR_DATABASE_URL)."""
    from monitor.server import serve as run

    settings = Settings()
    # the options override the environment everywhere, e.g. in webhook payload links
    settings = settings.model_copy(
        update={
            "host": host or settings.host,
            "port": settings.port if port is None else port,
            "otlp_grpc_port": otlp_grpc_port or settings.otlp_grpc_port,
        }
    )
    run(
        settings,
        host=settings.host,
        port=settings.port,
        scheduler=not no_scheduler,
        run_migrations=not no_migrate,
    )


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply Alembic migrations to head."""
    from monitor.runtime import database_url
    from monitor.storage import migrate
    from monitor.storage.engine import make_engine

    with database_url(Settings()) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        typer.echo(f"database at revision {migrate.current_revision(engine)}")
        engine.dispose()


@app.command()
def demo(
    minutes: Annotated[
        float, typer.Option(help="minutes of live traffic after the backfill (0: none)")
    ] = 10.0,
    port: Annotated[int, typer.Option()] = 8000,
    keep_running: Annotated[
        bool, typer.Option(help="keep serving (API, scheduler) after the live traffic ends")
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option(
            help="empty the demo's own data dir (MONITOR_DATA_DIR/demo) first; --no-fresh keeps it"
        ),
    ] = True,
) -> None:
    """Start the service and simulate models' traffic with injected drift, latency and errors.

    The demo keeps its data in its own folder, MONITOR_DATA_DIR/demo, emptied at every start
    (reset by hand: rm -rf that folder). With MONITOR_DATABASE_URL set it uses that database.
    """
    from monitor.demo import run_demo

    run_demo(Settings(), minutes=minutes, port=port, keep_running=keep_running, fresh=fresh)


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    model: Annotated[str, typer.Option("--model", help="model name")],
    batch_size: Annotated[int, typer.Option(help="rows per transaction")] = 10_000,
) -> None:
    """Bulk-load CSV / JSON Lines / Parquet prediction logs (binary COPY, progress bar).

    Format by extension: .csv (header row), .jsonl .ndjson .json, .parquet .pq
    One row per prediction; empty, null or NaN is missing. Optional columns:
      prediction_id  makes re-runs idempotent, joins labels
      model_version  default ""
      timestamp      ISO 8601 or epoch seconds; default: now
      prediction     the model's output, number or string
      latency_ms, status (not "ok" = error), variant
      gpu_seconds, tokens_in, tokens_out
      probabilities  score per class: an object, or probabilities.<class> columns
    Every other column is a feature (numbers: numeric, text: categorical);
    JSON Lines may nest them under "features". Bad rows: row, column, problem.
    Example CSV header:
      prediction_id,model_version,amount,country,prediction,latency_ms
    """
    from monitor.bulk import ingest_file

    ingest_file(Settings(), file, model, batch_size=batch_size)


@app.command()
def consume(
    source: Annotated[
        str,
        typer.Option("--source", help="nats://host:4222, redis://host:6379 or kafka://host:9092"),
    ],
    topic: Annotated[
        list[str], typer.Option("--topic", help="subject / stream key / topic; repeat for several")
    ],
    group: Annotated[str, typer.Option(help="consumer group / durable name")] = "ml-monitor",
    consumer: Annotated[
        str | None, typer.Option(help="this consumer's name in the group (default: host name)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="messages per transaction")] = 500,
    dead_letter: Annotated[
        str, typer.Option(help="where bad messages go; {topic} is replaced")
    ] = "{topic}.dlq",
    no_dead_letter: Annotated[
        bool, typer.Option("--no-dead-letter", help="skip bad messages (still counted)")
    ] = False,
    ack_wait: Annotated[
        float, typer.Option(min=0.1, help="seconds before an unacked message is redelivered")
    ] = 30.0,
    metrics_port: Annotated[
        int, typer.Option(help="port of this consumer's /metrics (0: none)")
    ] = 9108,
    metrics_host: Annotated[str, typer.Option()] = "127.0.0.1",
    payload: Annotated[
        str,
        typer.Option(
            "--format",
            help="records (ml-monitor's JSON), seldon (Seldon Core 2 model topics); "
            "auto: seldon when every topic is <prefix>.<ns>.model.<name>.inputs|outputs",
        ),
    ] = "auto",
) -> None:
    """Consume prediction logs from a broker; ack only after the rows are committed."""
    import socket

    from monitor.consume.loop import LoopSettings
    from monitor.consume.run import ConsumeOptions, run_consume
    from monitor.consume.source import SourceOptions

    options = ConsumeOptions(
        source=SourceOptions(
            url=source,
            topics=tuple(topic),
            group=group,
            consumer=consumer or socket.gethostname(),
            dead_letter=None if no_dead_letter else dead_letter,
            ack_wait_seconds=ack_wait,
        ),
        loop=LoopSettings(batch_size=batch_size),
        metrics_host=metrics_host,
        metrics_port=metrics_port or None,
        format=payload,
    )
    run_consume(Settings(), options)


@app.command()
def reference(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    model: Annotated[str, typer.Option("--model")],
    version: Annotated[str, typer.Option("--version", help="model version ('' = all)")] = "",
) -> None:
    """Set a model's reference data set (training data).

    Formats as for ingest: .csv (header row), .jsonl .ndjson .json, .parquet .pq
    One row per training example. Optional columns:
      prediction  the model's output on it: needed for prediction drift
      label       the truth: label drift
      probabilities  score per class (multiclass estimated performance):
                  an object, or one probabilities.<class> column per class
    Every other column is a feature (numbers: numeric, text: categorical).
    Example CSV header: amount,country,prediction,label
    """
    from monitor.bulk import load_reference

    load_reference(Settings(), file, model, version)


@app.command()
def report(
    model: Annotated[str, typer.Option("--model")],
    output: Annotated[Path, typer.Option("-o", "--output")],
    window: Annotated[str, typer.Option(help="e.g. 1h, 24h, 7d")] = "24h",
    version: Annotated[str, typer.Option("--version")] = "",
) -> None:
    """Evidently HTML drift report for a window."""
    from monitor.reports import write_report

    path = write_report(Settings(), model=model, window=window, version=version, output=output)
    typer.echo(f"wrote {path}")


@dashboards_app.command("render")
def dashboards_render(
    out: Annotated[Path, typer.Option(help="output folder")] = REPO_ROOT / "dashboards",
) -> None:
    """Regenerate the Grafana dashboards JSON from code."""
    from monitor.dashboards import render_all

    for path in render_all(out):
        typer.echo(f"wrote {path}")


@alerts_app.command("render")
def alerts_render(
    out: Annotated[Path, typer.Option(help="output folder")] = REPO_ROOT / "alerts",
) -> None:
    """Regenerate the Prometheus rules, their tests and alertmanager.yml from code."""
    from monitor.alerts import render_all

    for path in render_all(out):
        typer.echo(f"wrote {path}")


@grafana_app.command("provision")
def grafana_provision(
    url: Annotated[str, typer.Option("--url", help="Grafana base URL")],
    token: Annotated[str | None, typer.Option("--token", envvar="GRAFANA_TOKEN")] = None,
    prometheus_url: Annotated[str, typer.Option(help="Prometheus URL as Grafana reaches it")] = (
        "http://prometheus:9090"
    ),
    folder: Annotated[str, typer.Option()] = "ml-monitor",
) -> None:
    """Push datasource, folder, dashboards and alert rules through the Grafana HTTP API."""
    from monitor.grafana import provision

    summary = provision(url=url, token=token, prometheus_url=prometheus_url, folder=folder)
    typer.echo(summary)


@jobs_app.command("run")
def jobs_run(
    model: Annotated[str | None, typer.Option("--model")] = None,
    job: Annotated[
        str | None,
        typer.Option(
            "--job",
            help="drift | quality | performance | serving | cost | estimation | multivariate | "
            "segments (default: all)",
        ),
    ] = None,
) -> None:
    """Run the scheduled computations once, now."""
    from monitor.commands import run_jobs_cli

    typer.echo(run_jobs_cli(Settings(), model=model, job=job))


@tokens_app.command("create")
def tokens_create(name: Annotated[str, typer.Argument()]) -> None:
    """Create an API token (printed once; only its hash is stored)."""
    from monitor.runtime import database_url
    from monitor.storage.engine import make_engine
    from monitor.storage.tokens import create_token

    with database_url(Settings()) as url:
        typer.echo(create_token(make_engine(url), name))


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument()]) -> None:
    """Revoke an API token by name."""
    from monitor.runtime import database_url
    from monitor.storage.engine import make_engine
    from monitor.storage.tokens import revoke_token

    with database_url(Settings()) as url:
        typer.echo("revoked" if revoke_token(make_engine(url), name) else "no such active token")


def main() -> None:
    try:
        with sigterm_raises():
            app()
    except MonitorError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except Terminated:
        typer.echo("stopped (SIGTERM)", err=True)
        sys.exit(0)  # a requested, clean stop: systemd and Kubernetes count it as success
    except KeyboardInterrupt:
        typer.echo("stopped (Ctrl-C)", err=True)
        sys.exit(130)
