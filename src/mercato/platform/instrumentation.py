"""One pure ASGI middleware for the three pillars: request metrics, the access log and a span.

It is the outermost middleware (so 413s, idempotent replays and injected faults are counted
too) and also names each request (:func:`mercato.platform.http.assign_request_id`, echoed in
``X-Request-ID``): one layer, one ``send`` wrapper per request for both, because every layer
a request passes costs it a few microseconds (``bench/RESULTS.md``).

Per request the middleware only notes what the answer was and appends one tuple to a
:class:`RequestJournal`; counting, timing and the access-log lines are done for a batch of
requests at once (every 64 requests, and before every metrics flush: each second and each
scrape). Made one request at a time, an access-log line cost a busy server about three times
what it costs in a batch, whose code and data stay in the CPU's caches (measured on the product
read, see :func:`mercato.platform.logging.access_lines`); counting is batched the same way.

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

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mercato.platform import exposition, faults, health
from mercato.platform import logging as mlog
from mercato.platform.http import RESPONSE_HEADERS, assign_request_id
from mercato.platform.metrics import LONG_LIVED, UNMATCHED, Metrics

# Scraped and probed every few seconds: logged only when they fail.
QUIET_ROUTES = frozenset({"/metrics", "/livez", "/readyz", "/startupz"})


def _local_port(scope: Scope) -> int | None:
    """The port of the listener the request came in on (ASGI's ``server``)."""
    server = scope.get("server")
    return server[1] if server else None


class RouteTable:
    """Route templates for requests answered before routing, from the OpenAPI document.

    The OpenAPI document is the framework's public list of every route with its full template,
    however routers are nested; it is built once, at the first request that needs it.
    """

    def __init__(self, openapi: Callable[[], dict[str, Any]]) -> None:
        self._openapi = openapi
        self._table: list[tuple[re.Pattern[str], str, frozenset[str]]] | None = None

    def template(self, route: Any, path: str, method: str) -> str:
        """The template of the route that served (or would have served) this request."""
        template = getattr(route, "path_format", None) if route is not None else None
        if template:
            return str(template)
        if self._table is None:
            self._table = self._build()
        method = method.lower()
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
    metrics_port: int = 0,
    access_log: bool = True,
    tracer: Tracer | None = None,
    fault_injection: bool = False,
) -> None:
    """Add the metrics exposition (:mod:`.exposition`), the readiness gauge (:mod:`.health`),
    the fault switch when enabled (:mod:`.faults`) and, outside them all, this middleware.

    Call it after the application's own middleware, so this middleware runs outside the others.
    """
    app.state.metrics = metrics  # for the problem handler and long-lived endpoints
    if expose_metrics:
        exposition.install(app, port=metrics_port)
        health.gauge_readiness(app, metrics)
    if fault_injection:
        faults.install(app)
    app.add_middleware(
        InstrumentationMiddleware,
        openapi=app.openapi,
        metrics=metrics,
        count_requests=expose_metrics,
        metrics_port=metrics_port if expose_metrics else 0,
        access_log=access_log,
        tracer=tracer,
    )


class Outcome:
    """What a request's answer was, noted while it is sent. ``untimed``: an event stream or a
    long poll, whose wait is not latency."""

    __slots__ = ("replayed", "started", "status", "untimed")

    def __init__(self) -> None:
        self.status = 500  # unless a response starts: an exception ends in a 500 outside
        self.started = False
        self.untimed = False
        self.replayed = False


def _observing(send: Send, response: Outcome, echoed: tuple[bytes, bytes]) -> Send:
    """``send``, adding the request id and noting in ``response`` the status, that it started,
    and whether it is an event stream or an idempotent replay."""

    async def observed_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            response.status = message["status"]
            response.started = True
            headers = message.get("headers", ())
            for name, value in headers:
                if name == b"idempotent-replayed":
                    response.replayed = True
                elif name == b"content-type" and value.startswith(b"text/event-stream"):
                    response.untimed = True
            message["headers"] = [*headers, echoed, *RESPONSE_HEADERS]
        await send(message)

    return observed_send


# One answered request: (route, method, path, response, seconds, ids, ended at in ns since the
# epoch). ``route`` is the matched route object (or None); its template is looked up in the batch.
Answered = tuple[Any, str, str, Outcome, float, dict[str, str], int]
BATCH = 64  # answered requests counted and logged at once


class RequestJournal:
    """The requests answered since the last batch, counted in the metrics and logged together.

    Per request the middleware appends a tuple (:meth:`add`); :meth:`settle` turns the batch
    into metric counts and access-log lines in one pass, on the event loop's thread. It runs
    when a batch is full and before every metrics flush, which ``Metrics`` does once a second
    (the tail of a quiet server), before each scrape (so ``/metrics`` counts every request this
    process has answered) and when the application stops. Lines of a quiet server therefore
    reach the log a second or two after their request; each carries the time it ended.
    """

    def __init__(
        self, routes: RouteTable, metrics: Metrics, *, count_requests: bool, access_log: bool
    ) -> None:
        self.routes = routes
        self.metrics = metrics if count_requests else None
        self.access_log = access_log
        self.records: list[Answered] = []
        metrics.before_flush(self.settle)

    def add(self, answered: Answered) -> None:
        """Note one answered request; settle the batch when it is full."""
        records = self.records
        records.append(answered)
        if len(records) >= BATCH:
            self.settle()

    def settle(self) -> None:
        """Count and log every request noted since the last time."""
        records, self.records = self.records, []
        if not records:
            return
        metrics, log, template = self.metrics, self.access_log, self.routes.template
        lines: list[mlog.AccessRecord] = []
        replays = 0
        for route, method, path, response, seconds, ids, ended_ns in records:
            status = response.status
            name = template(route, path, method)
            if metrics is not None:
                metrics.observe_request(method, name, status, seconds, timed=not response.untimed)
                replays += response.replayed
            if log and (status >= 400 or name not in QUIET_ROUTES):
                level = logging.ERROR if status >= 500 else logging.INFO
                duration_ms = int(seconds * 1_000_000) / 1000  # to the microsecond
                lines.append((ended_ns, level, method, name, path, status, duration_ms, ids))
        if replays and metrics is not None:
            metrics.idempotent_replays.inc(replays)
        if lines:
            mlog.access_lines(lines)


class InstrumentationMiddleware:
    """Names every HTTP request, and counts, times, logs and (when tracing is on) traces it.

    ``metrics`` is where the journal's batches are settled; ``count_requests`` says whether
    requests are also counted there (``MERCATO_METRICS_ENABLED``). Requests that arrive on
    ``metrics_port`` go to :class:`MetricsPortApp` instead of the application.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        openapi: Callable[[], dict[str, Any]],
        metrics: Metrics,
        count_requests: bool = True,
        metrics_port: int = 0,
        access_log: bool = True,
        tracer: Tracer | None = None,
    ) -> None:
        self.app = app
        self.metrics_port = metrics_port
        self.metrics_app = exposition.MetricsPortApp(metrics)
        self.routes = RouteTable(openapi)
        self.journal = RequestJournal(
            self.routes, metrics, count_requests=count_requests, access_log=access_log
        )
        self.journaled = count_requests or access_log
        self.tracer = tracer
        self.active = self.journaled or tracer is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        app = self._app_for(scope)
        request_id = assign_request_id(scope)
        echoed = (b"x-request-id", request_id.encode())
        response = Outcome()
        observed_send = _observing(send, response, echoed)
        if not self.active:
            await app(scope, receive, observed_send)
            return
        start = time.perf_counter()
        span, token = self._start_span(scope) if self.tracer is not None else (None, None)
        ids = self._ids(request_id, span)
        bound = mlog.request_context.set(ids)
        counted = self.journal.metrics
        if counted is not None:
            counted.request_started()
        try:
            await app(scope, receive, observed_send)
        except asyncio.CancelledError:
            if not response.started:
                response.status = 499  # the client went away first: not a server error
            raise
        finally:
            seconds = time.perf_counter() - start
            if scope["state"].get(LONG_LIVED):
                response.untimed = True
            if span is not None:
                self._end_span(span, scope, response.status)
            if token is not None:
                otel_context.detach(token)
            if self.journaled:
                route, method, path = scope.get("route"), scope["method"], scope["path"]
                self.journal.add((route, method, path, response, seconds, ids, time.time_ns()))
            mlog.request_context.reset(bound)

    def _app_for(self, scope: Scope) -> ASGIApp:
        """The application, or what the metrics port serves for a request that came in there."""
        if self.metrics_port and _local_port(scope) == self.metrics_port:
            return self.metrics_app
        return self.app

    def _start_span(self, scope: Scope) -> tuple[Any, Any]:
        assert self.tracer is not None
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        span = self.tracer.start_span(
            scope["method"],
            context=extract(carrier),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": scope["method"],
                "url.path": mlog.mask_path(scope["path"]),
                "url.scheme": scope.get("scheme", "http"),
            },
        )
        return span, otel_context.attach(trace.set_span_in_context(span))

    def _end_span(self, span: Any, scope: Scope, status: int) -> None:
        route = self.routes.template(scope.get("route"), scope["path"], scope["method"])
        span.update_name(f"{scope['method']} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    @staticmethod
    def _ids(request_id: str, span: Any) -> dict[str, str]:
        values = {"request_id": request_id}
        if span is not None:
            ctx = span.get_span_context()
            if ctx.is_valid:
                values["trace_id"] = format(ctx.trace_id, "032x")
                values["span_id"] = format(ctx.span_id, "016x")
        return values
