"""``monitor jobs run``: the jobs once, now, from the command line, wired like the server."""

from __future__ import annotations

from monitor.config import Settings
from monitor.errors import MonitorError
from monitor.jobs.drift_notes import notes_for
from monitor.jobs.runner import run_jobs
from monitor.runtime import database_url
from monitor.services import build_services


class JobsFailed(MonitorError):
    """``monitor jobs run`` finished with failed job runs (the message holds the table)."""


def run_jobs_cli(settings: Settings, model: str | None, job: str | None) -> str:
    """``monitor jobs run``: the report as a table; raises ``JobsFailed`` if a run failed."""
    with database_url(settings) as url:
        services = build_services(settings, url)
        try:
            report = run_jobs(services, model, job)
            drifted = {o.model for o in report.outcomes if o.job == "drift" and o.ok}
            records = [services.models.require(name) for name in sorted(drifted)]
            notes = notes_for(services.db, records)
        finally:
            services.engine.dispose()
    table = "\n".join([report.table(), *notes])
    if report.failures:
        raise JobsFailed(f"{report.failures} job run(s) failed\n{table}")
    return table
