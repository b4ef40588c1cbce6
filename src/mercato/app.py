"""The FastAPI application: built from Settings, every part opened and closed in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from mercato import __version__
from mercato.bootstrap import Container, build
from mercato.catalog.routes import router as catalog_router
from mercato.config import Settings
from mercato.customers.routes import router as customers_router
from mercato.orders import realtime as orders_realtime
from mercato.orders.routes import router as orders_router
from mercato.platform import health, problems
from mercato.platform.http import BodyLimitMiddleware, RequestIdMiddleware
from mercato.platform.idempotency import IdempotencyMiddleware
from mercato.platform.logging import configure as configure_logging

DESCRIPTION = """
A commerce backend: customers register and log in, browse the catalog, build draft orders and
place them with a card; staff manage products and stock and fulfil orders.

Money is always `{"amount": <integer minor units>, "currency": "<ISO 4217>"}`.
Errors are `application/problem+json` (RFC 9457) with a stable `code` and the offending `field`.
Sandbox cards: `4242 4242 4242 4242` succeeds, `4000 0000 0000 0002` is declined,
`4000 0000 0000 0119` fails with a provider error.
"""


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """The application for these settings (read from the environment when not given)."""
    settings = settings or Settings()
    container = container or build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        app.state.started = True
        try:
            yield
        finally:
            app.state.draining = True
            container.notifier.shutdown()  # streams ask to reconnect, long polls answer now
            await container.stop()

    app = FastAPI(
        title="mercato",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        debug=settings.debug,
    )
    app.state.container = container
    app.state.settings = settings
    app.state.tokens = container.tokens
    app.state.customers = container.customers
    app.state.catalog = container.catalog
    app.state.orders = container.orders
    app.state.notifier = container.notifier
    app.state.started = False
    app.state.draining = False
    app.state.account_active = container.customers.is_active
    app.state.readiness_checks = {"database": container.db.ping}

    problems.install(app)
    # Routes are matched in order: the catalog reads, the busiest requests, come first.
    app.include_router(catalog_router)
    app.include_router(orders_router)
    app.include_router(customers_router)
    app.include_router(health.router)
    orders_realtime.install(app)  # before the middleware below, so it sits innermost
    app.add_middleware(IdempotencyMiddleware, store=container.idempotency, tokens=container.tokens)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings and logging from the environment."""
    settings = Settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    return create_app(settings)
