"""The FastAPI application: built from Settings, every part opened and closed in the lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.middleware import Middleware
from starlette.types import Lifespan

from mercato import __version__, console
from mercato.bootstrap import Container, build
from mercato.catalog.routes import IN_FRONT as CATALOG_IN_FRONT
from mercato.catalog.routes import router as catalog_router
from mercato.catalog.routes import search_router
from mercato.config import Feature, Settings
from mercato.customers.routes import router as customers_router
from mercato.migrations.migrate import SchemaCheck
from mercato.orders import realtime as orders_realtime
from mercato.orders.routes import IN_FRONT as ORDERS_IN_FRONT
from mercato.orders.routes import router as orders_router
from mercato.platform import health, instrumentation, openapi, problems, switches_routes
from mercato.platform import lifecycle as lifecycle_registry
from mercato.platform.db import DatabaseUnavailable
from mercato.platform.http import BodyLimitMiddleware
from mercato.platform.idempotency import IdempotencyMiddleware
from mercato.platform.lifecycle import Lifecycle, LifecycleMiddleware
from mercato.platform.logging import configure as configure_logging
from mercato.platform.routing import InFrontOfRoutes
from mercato.web.state import AppState
from mercato.webhooks.routes import router as webhooks_router

IN_FRONT = {**CATALOG_IN_FRONT, **ORDERS_IN_FRONT}
"""The busiest routes, answered in front of FastAPI's routing (:class:`InFrontOfRoutes`)."""

NO_FRAMEWORK_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}

DESCRIPTION = """
A commerce backend: customers register and log in, browse the catalog, build draft orders and
place them with a payment method (a provider's card token, e.g. Stripe.js' `pm_...`); staff manage
products and stock and fulfil orders.

Money is always `{"amount": <integer minor units>, "currency": "<ISO 4217>"}`.
Errors are `application/problem+json` (RFC 9457) with a stable `code` and the offending `field`.
Sandbox: `pm_card_visa` (or card `4242 4242 4242 4242`) succeeds, `pm_card_visa_chargeDeclined`
(`4000 0000 0000 0002`) is declined, `pm_card_chargeDeclinedProcessingError`
(`4000 0000 0000 0119`) fails with a provider error.
"""


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """The application for these settings (read from the environment when not given)."""
    settings = settings or Settings()
    container = container or build(settings)
    lifecycle = _lifecycle(container)
    docs = settings.enabled(Feature.API_DOCS)
    app = FastAPI(
        title="mercato",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(container, lifecycle),
        debug=settings.debug,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        # Requests are traced, counted and logged by mercato's own middleware
        # (platform.instrumentation). FastAPI's built-in telemetry would add a second server
        # span and second request metrics as soon as a global OpenTelemetry provider exists,
        # and otherwise looks up three environment variables on every request to find out.
        telemetry=NO_FRAMEWORK_TELEMETRY,
        # operation ids are the route functions' names (place_order, issue_token): what links
        # name and what the generated client's functions are called
        generate_unique_id_function=openapi.operation_id,
    )
    app.state = AppState(container, lifecycle)
    problems.install(app)
    _include_routes(app)
    # innermost, in front of the routes: the busiest requests skip FastAPI's routing
    app.add_middleware(InFrontOfRoutes, routes=app.routes, answers=IN_FRONT)
    # add_middleware puts each outside those added before it: the list goes in innermost first
    for layer in reversed(middleware(container, lifecycle)):
        app.add_middleware(layer.cls, *layer.args, **layer.kwargs)
    _instrument(app, container)
    return app


def middleware(container: Container, lifecycle: Lifecycle) -> list[Middleware]:
    """The application's middleware, outermost first.

    Outside all of these sits the instrumentation (request id, metrics, access log, traces,
    and fault injection where enabled: :func:`_instrument`); inside them, in front of the
    routes, the real-time gate and long poll (``orders.realtime.install``).
    """
    settings = container.settings
    return [
        Middleware(LifecycleMiddleware, lifecycle=lifecycle),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(problems.MiddlewareErrorsMiddleware),
        Middleware(
            IdempotencyMiddleware,
            store=container.idempotency,
            tokens=container.tokens,
            secret=settings.token_secret.get_secret_value(),
        ),
    ]


def _lifecycle(container: Container) -> Lifecycle:
    return Lifecycle(
        startup_checks={
            "database": container.db.ping,
            "schema": SchemaCheck.for_database(container.db),
        },
        readiness_checks={"database": container.db.ping},
        # streams end with a reconnect event and long polls answer at once
        on_drain=[container.notifier.shutdown],
    )


def _lifespan(container: Container, lifecycle: Lifecycle) -> Lifespan[FastAPI]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Start-up never migrates (``mercato db upgrade`` is its own step) and never fails the
        # process: while the database is unreachable or behind, /startupz says why and the
        # checks are retried; the workers start once they pass (the container's second start).
        lifecycle_registry.register(lifecycle)
        try:
            with contextlib.suppress(DatabaseUnavailable):
                await container.start(workers=False)
            await lifecycle.start(container.start)
            yield
        finally:
            await lifecycle.close()
            lifecycle_registry.unregister(lifecycle)
            await container.stop()

    return lifespan


def _include_routes(app: FastAPI) -> None:
    # Routes are matched in order: the catalog reads, the busiest requests, come first.
    app.include_router(search_router)  # before /v1/products/{product_id}
    app.include_router(catalog_router)
    app.include_router(orders_router)
    app.include_router(customers_router)
    app.include_router(health.router)
    app.include_router(switches_routes.router)
    app.include_router(webhooks_router)
    orders_realtime.install(app)  # before the middleware below, so it sits innermost
    # errors, auth answers and links in the document; before instrumentation reads its routes
    openapi.install(app)
    app.mount("/console", console.create(app, events=orders_realtime.AllOrderEvents()))


def _instrument(app: FastAPI, container: Container) -> None:
    """Metrics, logs and traces: added last, so their middleware runs outside the others."""
    settings = container.settings
    instrumentation.install(
        app,
        metrics=container.metrics,
        expose_metrics=settings.metrics_enabled,
        metrics_port=settings.metrics_port,
        access_log=settings.access_log,
        tracer=container.tracing.tracer,
        fault_injection=settings.fault_injection,  # never in production: Settings refuses it
    )


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings and logging from the environment."""
    settings = Settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    return create_app(settings)
