"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from monitor import __version__
from monitor.api.auth import TokenVerifier
from monitor.api.errors import install_error_handlers
from monitor.api.limits import BodyLimit
from monitor.api.openapi import install_openapi
from monitor.api.routes import (
    alertmanager,
    drift,
    events,
    health,
    ingest,
    integrations,
    jobs,
    models,
    status,
    webhooks,
)
from monitor.api.routing import MonitorRoute
from monitor.services import Services

DOCS_ASSETS = "/docs-assets"


def create_app(services: Services) -> FastAPI:
    # /docs and /redoc with Swagger UI and ReDoc served from the package, not a CDN: air-gapped
    # hosts get working docs; the validator badge (a call to validator.swagger.io) is off
    app = FastAPIOffline(
        title="ml-monitor",
        version=__version__,
        description="Prediction logs in, drift, quality, performance and serving metrics out.",
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.services = services
    # bearer tokens: MONITOR_API_TOKENS and the api_tokens table (HTTP only, so wired here)
    app.state.tokens = TokenVerifier(services.engine, services.settings.api_tokens)
    app.router.route_class = MonitorRoute
    app.add_middleware(BodyLimit, limit=services.settings.max_body_bytes)
    install_error_handlers(app)
    install_openapi(app, services.settings)
    for module in (
        health,
        ingest,
        integrations,
        models,
        events,
        jobs,
        alertmanager,
        webhooks,
        drift,
        status,
    ):
        app.include_router(module.router)
    return app
