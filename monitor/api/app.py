"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from monitor import __version__
from monitor.api.errors import install_error_handlers
from monitor.api.routes import alertmanager, drift, events, health, ingest, jobs, models, webhooks
from monitor.services import Services


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="ml-monitor",
        version=__version__,
        description="Prediction logs in, drift, quality, performance and serving metrics out.",
    )
    app.state.services = services
    install_error_handlers(app)
    for module in (health, ingest, models, events, jobs, alertmanager, webhooks, drift):
        app.include_router(module.router)
    return app
