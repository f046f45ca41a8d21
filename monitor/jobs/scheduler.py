"""APScheduler 3.x inside ``monitor serve``."""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler

from monitor.jobs.maintenance import run_maintenance
from monitor.services import Services


def build_scheduler(services: Services) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone="UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    scheduler.add_job(run_maintenance, "interval", hours=1, args=[services], id="maintenance")
    return scheduler
