"""One pure ASGI middleware for the three pillars: request metrics, the access log and a span.

It is the outermost middleware (so 413s, idempotent replays and injected faults are counted
too) and also names each request (:func:`mercato.platform.http.assign_request_id`, echoed in
``X-Request-ID``): one layer, one ``send`` wrapper per request for both, because every layer
a request passes costs it a few microseconds (``bench/RESULTS.md``).

Routes are labelled by their template (``/v1/orders/{order_id}``), found after routing in
``scope["route"]``; a request answered before routing (a replay, a 413, an injected fault) is
matched against the routes afterwards; a path no route knows is ``<unmatched>``, so scanning
random URLs adds no series.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mercato.platform import faults
from mercato.platform import logging as mlog
from mercato.platform.http import assign_request_id
from mercato.platform.metrics import LONG_LIVED, UNMATCHED, Metrics

router = APIRouter(include_in_schema=False)

# Scraped and probed every few seconds: logged only when they fail.
QUIET_ROUTES = frozenset({"/metrics", "/livez", "/readyz", "/startupz"})


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus exposition of every metric (all worker processes added up)."""
    metrics: Metrics = request.app.state.metrics
    body, content_type = await metrics.render()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


class RouteTable:
    """Route templates for requests answered before routing, from the OpenAPI document.

    The OpenAPI document is the framework's public list of every route with its full template,
    however routers are nested; it is built once, at the first request that needs it.
    """

    def __init__(self, openapi: Callable[[], dict[str, Any]]) -> None:
        self._openapi = openapi
        self._table: list[tuple[re.Pattern[str], str, frozenset[str]]] | None = None

    def template(self, scope: Scope) -> str:
        """The template of the route that served (or would have served) this request."""
        route = scope.get("route")
        template = getattr(route, "path_format", None) if route is not None else None
        if template:
            return str(template)
        if self._table is None:
            self._table = self._build()
        path, method = scope["path"], scope["method"].lower()
        fallback = UNMATCHED
        for pattern, candidate, methods in self._table:
            if pattern.fullmatch(path):
                if method in methods:
                    return candidate
                fallback = candidate if fallback == UNMATCHED else fallback
        return fallback

    def _build(self) -> list[tuple[re.Pattern[str], str, frozenset[str]]]:
        table = []
        for template, operations in self._openapi().get("paths", {}).items():
            regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            table.append((re.compile(regex), template, frozenset(operations)))
        return table


def install(
    app: FastAPI,
    *,
    metrics: Metrics,
    expose_metrics: bool = True,
    access_log: bool = True,
    tracer: Tracer | None = None,
    fault_injection: bool = False,
) -> None:
    """Add /metrics, the readiness gauge, the fault switch (when enabled) and the middleware.

    Call it after the application's own middleware, so this middleware runs outside the others.
    """
    app.state.metrics = metrics  # for the problem handler and long-lived endpoints
    if expose_metrics:
        app.include_router(router)
        metrics.on_scrape(lambda: _sample_readiness(app, metrics))
    if fault_injection:
        app.state.faults = faults.FaultInjector()
        app.include_router(faults.router)
        app.add_middleware(faults.FaultInjectionMiddleware, injector=app.state.faults)
    app.add_middleware(
        InstrumentationMiddleware,
        openapi=app.openapi,
        metrics=metrics if expose_metrics else None,
        access_log=access_log,
        tracer=tracer,
    )


async def _sample_readiness(app: FastAPI, metrics: Metrics) -> None:
    """Set ``mercato_ready`` as /readyz would answer now (for the flapping alert)."""
    state = app.state
    ready = bool(getattr(state, "started", False)) and not getattr(state, "draining", False)
    for check in getattr(state, "readiness_checks", {}).values() if ready else ():
        try:
            await check()
        except Exception:
            ready = False
    metrics.ready.set(1 if ready else 0)


# What a request's answer was, noted while it is sent (a list: cheaper than an object per request)
STATUS, STARTED, STREAM, REPLAYED = range(4)


def _response() -> list[Any]:
    # 500 unless a response starts: an exception ends in a 500 outside
    return [500, False, False, False]


def _observing(send: Send, response: list[Any], echoed: tuple[bytes, bytes]) -> Send:
    """``send``, adding the request id and noting in ``response`` the status, that it started,
    and whether it is an event stream or an idempotent replay."""

    async def observed_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            response[STATUS] = message["status"]
            response[STARTED] = True
            headers = message.get("headers", ())
            for name, value in headers:
                if name == b"idempotent-replayed":
                    response[REPLAYED] = True
                elif name == b"content-type" and value.startswith(b"text/event-stream"):
                    response[STREAM] = True
            message["headers"] = [*headers, echoed]
        await send(message)

    return observed_send


class InstrumentationMiddleware:
    """Names every HTTP request, and counts, times, logs and (when tracing is on) traces it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        openapi: Callable[[], dict[str, Any]],
        metrics: Metrics | None,
        access_log: bool = True,
        tracer: Tracer | None = None,
    ) -> None:
        self.app = app
        self.routes = RouteTable(openapi)
        self.metrics = metrics
        self.log = access_log
        self.tracer = tracer
        self.active = metrics is not None or access_log or tracer is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = assign_request_id(scope)
        echoed = (b"x-request-id", request_id.encode())
        response = _response()
        observed_send = _observing(send, response, echoed)
        if not self.active:
            await self.app(scope, receive, observed_send)
            return
        start = time.perf_counter()
        span, token = self._start_span(scope) if self.tracer is not None else (None, None)
        ids = self._ids(request_id, span)
        bound = mlog.request_context.set(ids)
        if self.metrics is not None:
            self.metrics.request_started()
        try:
            await self.app(scope, receive, observed_send)
        except asyncio.CancelledError:
            if not response[STARTED]:
                response[STATUS] = 499  # the client went away first: not a server error
            raise
        finally:
            self._finish(scope, response, time.perf_counter() - start, span, ids)
            if token is not None:
                otel_context.detach(token)
            mlog.request_context.reset(bound)

    def _start_span(self, scope: Scope) -> tuple[Any, Any]:
        assert self.tracer is not None
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        span = self.tracer.start_span(
            scope["method"],
            context=extract(carrier),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": scope["method"],
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
            },
        )
        return span, otel_context.attach(trace.set_span_in_context(span))

    @staticmethod
    def _ids(request_id: str, span: Any) -> dict[str, str]:
        values = {"request_id": request_id} if request_id else {}
        if span is not None:
            ctx = span.get_span_context()
            if ctx.is_valid:
                values["trace_id"] = format(ctx.trace_id, "032x")
                values["span_id"] = format(ctx.span_id, "016x")
        return values

    def _finish(
        self,
        scope: Scope,
        response: list[Any],
        seconds: float,
        span: Any,
        ids: dict[str, str],
    ) -> None:
        status: int = response[STATUS]
        route = self.routes.template(scope)
        method: str = scope["method"]
        if self.metrics is not None:
            long_lived = response[STREAM] or scope["state"].get(LONG_LIVED, False)
            self.metrics.observe_request(method, route, status, seconds, timed=not long_lived)
            if response[REPLAYED]:
                self.metrics.idempotent_replays.inc()
        if span is not None:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        if self.log and (status >= 400 or route not in QUIET_ROUTES):
            mlog.access(
                logging.ERROR if status >= 500 else logging.INFO,
                method,
                route,
                scope["path"],
                status,
                int(seconds * 1_000_000) / 1000,  # milliseconds to the microsecond
                ids,  # passed, not read back from the context: copying it costs 15 us
            )
