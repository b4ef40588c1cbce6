"""RFC 9457 problem details: one place that turns every error into an ``application/problem+json``.

Domain errors are mapped by their category (the kernel base class, found along the MRO);
validation errors name each offending field; anything unmapped becomes a 500 that carries the
request id and is logged once, with no stack trace in the body.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Mapping
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mercato.kernel import errors as k
from mercato.platform.db import (
    DatabaseUnavailable,
    OutOfRange,
    TransientError,
    UniqueViolation,
    UnstorableText,
)
from mercato.platform.error_codes import ErrorCode
from mercato.platform.http import RESPONSE_HEADERS

log = logging.getLogger("mercato.errors")

PROBLEM_JSON = "application/problem+json"

_STATUS_BY_CATEGORY: tuple[tuple[type[k.DomainError], int], ...] = (
    (k.InvalidValue, 422),
    (k.NotFound, 404),
    (k.Conflict, 409),
    (k.PermissionDenied, 403),
    (k.AuthenticationFailed, 401),
    (k.PaymentRequired, 402),
    (k.Unavailable, 503),
    (k.TooManyRequests, 429),
)

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    402: "Payment declined",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}

_CODES_BY_STATUS = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    413: ErrorCode.BODY_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_FAILED,
    429: ErrorCode.TOO_MANY_REQUESTS,
    503: ErrorCode.UNAVAILABLE,
}


def status_for(error: k.DomainError) -> int:
    """The HTTP status for a domain error's category."""
    for category, status in _STATUS_BY_CATEGORY:
        if isinstance(error, category):
            return status
    return 400


_RESERVED = frozenset({"type", "title", "status", "detail", "code", "instance", "request_id"})


def problem(
    status: int,
    code: str,
    detail: str,
    /,
    *,
    request: Request | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response; ``extra`` members never overwrite the standard ones."""
    body: dict[str, Any] = {
        "type": f"https://mercato.dev/problems/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.url.path
        request_id = request.scope.get("state", {}).get("request_id")
        if request_id:
            body["request_id"] = request_id
    body.update({k: v for k, v in extra.items() if v is not None and k not in _RESERVED})
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def _field_path(loc: tuple[Any, ...]) -> tuple[str, str]:
    where = str(loc[0]) if loc else "body"
    path = ""
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return where, path or where


_INVALID_TOKEN = frozenset({"invalid_token", "token_expired", "unknown_account"})


def challenge(error: k.DomainError) -> str:
    """The ``WWW-Authenticate`` value of a 401 (RFC 6750, section 3): a token that was sent but
    cannot be used is an ``invalid_token``; a missing one, or wrong credentials, just a challenge.
    """
    if error.code in _INVALID_TOKEN:
        return f'Bearer realm="mercato", error="invalid_token", error_description="{error.code}"'
    return 'Bearer realm="mercato"'


def _error_headers(exc: k.DomainError) -> dict[str, str] | None:
    headers = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, k.AuthenticationFailed):
        headers["WWW-Authenticate"] = challenge(exc)
    return headers or None


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, k.DomainError)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.domain_error(str(exc.code))
    headers = _error_headers(exc)
    data = {key: value for key, value in exc.data.items() if value is not None}
    return problem(
        status_for(exc),
        exc.code,
        exc.message,
        request=request,
        headers=headers,
        field=exc.field,
        **data,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return problem(
                400,
                ErrorCode.MALFORMED_JSON,
                "The request body is not valid JSON.",
                request=request,
            )
        where, field = _field_path(tuple(err.get("loc", ())))
        errors.append({"field": field, "in": where, "reason": err.get("msg", "invalid")})
    first = errors[0] if errors else {"field": None, "reason": "invalid"}
    detail = f"{first['field']}: {first['reason']}" if first["field"] else str(first["reason"])
    return problem(
        422,
        ErrorCode.VALIDATION_FAILED,
        detail,
        request=request,
        field=first["field"],
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI's answer to a body json.loads cannot read other than by a JSONDecodeError:
        # invalid UTF-8, nesting too deep, an integer too long
        return problem(
            400, ErrorCode.MALFORMED_JSON, "The request body is not valid JSON.", request=request
        )
    code = _CODES_BY_STATUS.get(exc.status_code, ErrorCode.ERROR)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    headers = exc.headers
    if exc.status_code == 405:
        # Starlette names only the methods of the first route of the path; a path served by
        # several routes (GET and POST /v1/orders) supports all of theirs
        headers = {**(headers or {}), "Allow": ", ".join(_allowed(request.app, request.url.path))}
    return problem(exc.status_code, code, detail, request=request, headers=headers)


_ROUTE_TABLES: WeakKeyDictionary[Any, list[tuple[re.Pattern[str], frozenset[str], str]]] = (
    WeakKeyDictionary()
)


def _allowed(app: Any, path: str) -> list[str]:
    """Every method some route of the application serves at ``path``; where a route names the
    path itself (``/v1/products/search``), only its methods, not those of a template that
    would also match it (``/v1/products/{product_id}``), as the OpenAPI document lists them."""
    table = _ROUTE_TABLES.get(app)
    if table is None:
        table = [
            (compile_path(str(route.path))[0], frozenset(route.methods or ()), str(route.path))
            for route in iter_route_contexts(app.routes)
        ]
        _ROUTE_TABLES[app] = table
    matching = [(methods, template) for regex, methods, template in table if regex.match(path)]
    if any(template == path for _, template in matching):
        matching = [(methods, template) for methods, template in matching if template == path]
    return sorted({m for methods, _ in matching for m in methods})


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s", exc)
    return problem(
        503,
        ErrorCode.DATABASE_UNAVAILABLE,
        "The database is unavailable; try again shortly.",
        request=request,
        headers={"Retry-After": "2"},
    )


async def _transient(request: Request, exc: Exception) -> Response:
    return problem(
        503,
        ErrorCode.RETRY_LATER,
        "The request met concurrent updates; retry it.",
        request=request,
        headers={"Retry-After": "1"},
    )


async def _unique(request: Request, exc: Exception) -> Response:
    return problem(
        409, ErrorCode.CONFLICT, "The request conflicts with existing data.", request=request
    )


async def _unstorable(request: Request, exc: Exception) -> Response:
    return problem(
        422,
        ErrorCode.INVALID_TEXT,
        "The request contains a character that cannot be stored, such as NUL.",
        request=request,
    )


async def _out_of_range(request: Request, exc: Exception) -> Response:
    return problem(
        422,
        ErrorCode.VALUE_OUT_OF_RANGE,
        "The request would make a stored number larger than the database can hold.",
        request=request,
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # Starlette sends this answer from outside every middleware, so it adds their headers here
    headers = {name.decode(): value.decode() for name, value in RESPONSE_HEADERS}
    return problem(
        500,
        ErrorCode.INTERNAL_ERROR,
        "An unexpected error occurred; it has been logged.",
        request=request,
        headers=headers,
    )


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DATABASE_ERRORS = (
    (DatabaseUnavailable, _database_unavailable),
    (TransientError, _transient),
    (UniqueViolation, _unique),
)


class MiddlewareErrorsMiddleware:
    """Renders database errors raised by middleware (the idempotency store works outside the
    routes' exception handlers) as the same problems the handlers give, instead of a 500.

    The store serves unsafe requests only, so safe ones are handed on untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or scope["method"] in _SAFE_METHODS:
            # handed on, not awaited here: no frame of this layer stays alive while the
            # request runs (a held long poll or stream keeps every frame it passes)
            return self.app(scope, receive, send)
        return self._tracked(scope, receive, send)

    async def _tracked(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except (DatabaseUnavailable, TransientError, UniqueViolation) as exc:
            if started:
                raise
            handler = next(h for kind, h in _DATABASE_ERRORS if isinstance(exc, kind))
            response = await handler(Request(scope), exc)
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the handlers on an application."""
    app.add_exception_handler(k.DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    app.add_exception_handler(TransientError, _transient)
    app.add_exception_handler(UniqueViolation, _unique)
    app.add_exception_handler(UnstorableText, _unstorable)
    app.add_exception_handler(OutOfRange, _out_of_range)
    app.add_exception_handler(Exception, _unexpected)


def _handler(scope: Scope, exc: Exception, *, catch_all: bool) -> Any:
    """The application's own handler for this error, by its class's MRO; None if it has none
    (with ``catch_all`` False: none but the one for any ``Exception``)."""
    handlers: dict[Any, Any] = getattr(scope.get("app"), "exception_handlers", {})
    return next(
        (
            handlers[c]
            for c in type(exc).__mro__
            if c in handlers and (catch_all or c is not Exception)
        ),
        None,
    )


async def send_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer with the application's own handler for this error (problem+json)."""
    handler = _handler(scope, exc, catch_all=True)
    if handler is None:
        raise exc
    response: Response = await handler(Request(scope, receive), exc)
    await response(scope, receive, send)


async def send_handled_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> bool:
    """Answer with the application's handler for this error, as FastAPI's exception middleware
    would; False, answering nothing, when only the catch-all for any ``Exception`` (which runs
    outside every middleware) would handle it."""
    handler = _handler(scope, exc, catch_all=False)
    if handler is None:
        return False
    response: Response = await handler(Request(scope, receive), exc)
    await response(scope, receive, send)
    return True
