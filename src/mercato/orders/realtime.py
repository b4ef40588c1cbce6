"""Following orders in real time: long polls and Server-Sent Events, over plain HTTP.

* ``GET /v1/orders/{id}?wait=N`` with ``If-None-Match: "<version>"`` is a long poll: a newer
  version is answered at once; otherwise the request is held until the order changes (200 with
  the order) or ``N`` seconds pass (capped by ``MERCATO_REALTIME_MAX_WAIT_S``; 304). Without
  ``wait`` (or with ``wait=0``) the route in :mod:`mercato.orders.routes` answers as usual.
* ``GET /v1/orders/{id}/events`` streams one order's events (its owner or staff): first its
  history after ``Last-Event-ID`` (all of it without one), then live events. The stream ends after
  ``OrderDelivered`` or ``OrderCancelled``; a reconnect after that is answered 204, which tells
  ``EventSource`` to stop.
* ``GET /v1/events`` streams every order event to staff, optionally only some types
  (``?type=OrderPlaced&type=OrderCancelled`` or comma-separated); without ``Last-Event-ID`` it
  starts with the next event.

Every event's ``id`` is its outbox sequence number. These endpoints are plain ASGI (see
:mod:`mercato.platform.streaming` for why) and are registered by :func:`install`. What wakes them
is :mod:`mercato.platform.notify`.

A long poll wakes on the order's *events*. Editing a draft and the checkout's own bookkeeping
change the version without an event; a long poll sees those changes when its wait ends (it reads
the order again then rather than answering 304 blindly), so it is never wrong, only late.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mercato.kernel.errors import (
    AuthenticationFailed,
    DomainError,
    InvalidValue,
    PermissionDenied,
)
from mercato.orders.events import OrderEvent
from mercato.orders.routes import OrderRead
from mercato.orders.service import OrderHead, OrdersService
from mercato.platform import notify, streaming
from mercato.platform.notify import Change, Notifier, ShuttingDown, TooManyWaiting
from mercato.platform.security import Principal

log = logging.getLogger("mercato.orders")

AGGREGATE = "order"
EVENT_TYPES = frozenset(cls.__name__ for cls in OrderEvent.__subclasses__())
FINAL_EVENTS = frozenset({"OrderDelivered", "OrderCancelled"})
FINAL_STATUSES = frozenset({"delivered", "cancelled"})
_PREFIX = "/v1/orders/"
_MAX_ID = 36


def _state(scope: Scope) -> Any:
    return scope["app"].state


def _version(change: Change) -> int:
    return int(change.payload.get("version", 0))


def _order_id_in(path: str) -> str | None:
    """The id in ``/v1/orders/{id}`` (nothing after it), else None."""
    if not path.startswith(_PREFIX):
        return None
    rest = path[len(_PREFIX) :]
    return rest if rest and "/" not in rest and len(rest) <= _MAX_ID else None


# -- long polling ------------------------------------------------------------------------------


def _order_response(order: Any, *, close: bool = False) -> Response:
    headers = {"ETag": f'"{order.version}"', "Cache-Control": "no-cache"}
    if close:
        headers["Connection"] = "close"
    body = OrderRead.of(order).model_dump_json()
    return Response(body, 200, headers=headers, media_type="application/json")


def _not_modified(version: int, *, close: bool = False) -> Response:
    headers = {"ETag": f'"{version}"', "Cache-Control": "no-cache"}
    if close:
        headers["Connection"] = "close"  # during shutdown: come back through another replica
    return Response(status_code=304, headers=headers)


class LongPollMiddleware:
    """Takes ``GET /v1/orders/{id}`` with a positive ``wait`` before FastAPI's routing.

    Anything else, including a ``wait`` that is not a number >= 0 (which the route refuses with
    a 422 naming it), goes on to the application unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and b"wait=" in scope.get("query_string", b"")
        ):
            order_id = _order_id_in(scope["path"])
            waits = streaming.query(scope).get("wait")
            seconds = streaming.parse_wait(waits[-1]) if waits else None
            if order_id is not None and seconds:
                await _long_poll(scope, receive, send, order_id, seconds)
                return
        await self.app(scope, receive, send)


async def _long_poll(
    scope: Scope, receive: Receive, send: Send, order_id: str, wait: float
) -> None:
    state = _state(scope)
    orders: OrdersService = state.orders
    notifier: Notifier = state.notifier
    try:
        principal = streaming.authenticate(scope, state.tokens)
        tags = streaming.parse_if_none_match(streaming.header(scope, b"if-none-match"))
    except DomainError as exc:
        await streaming.send_error(scope, receive, send, exc)
        return

    async def answer(reason: str) -> Response:
        if reason == "shutdown" and head is not None:
            return _not_modified(head.version, close=True)
        if reason == "timeout":
            current = await orders.head(principal, order_id)
            if streaming.matches(tags, current.version):
                return _not_modified(current.version)
        return _order_response(await orders.get(principal, order_id))

    poll = streaming.LongPoll(scope, send, answer=answer)
    head: OrderHead | None = None
    try:
        await notifier.follow(poll, aggregate_type=AGGREGATE, aggregate_id=order_id, stream=False)
    except (TooManyWaiting, ShuttingDown) as refused:
        await _answer_without_waiting(scope, receive, send, principal, order_id, tags, refused)
        return
    except Exception as exc:
        await streaming.send_error(scope, receive, send, exc)
        return
    try:
        head = await orders.head(principal, order_id)
        seen = head.version
        if not streaming.matches(tags, seen):
            await _order_response(await orders.get(principal, order_id))(scope, receive, send)
            return
        await poll.wait(
            receive,
            min(wait, state.settings.realtime_max_wait_s),
            accept=lambda change: _version(change) > seen,
        )
    except Exception as exc:
        await streaming.send_error(scope, receive, send, exc)
    finally:
        notifier.unfollow(poll, aggregate_type=AGGREGATE, aggregate_id=order_id)


async def _answer_without_waiting(
    scope: Scope,
    receive: Receive,
    send: Send,
    principal: Principal,
    order_id: str,
    tags: frozenset[int] | None,
    refused: Exception,
) -> None:
    """At capacity or shutting down: a client that is behind still gets the order now."""
    orders: OrdersService = _state(scope).orders
    closing = isinstance(refused, ShuttingDown)
    try:
        order = await orders.get(principal, order_id)
    except Exception as exc:
        await streaming.send_error(scope, receive, send, exc)
        return
    if not streaming.matches(tags, order.version):
        response = _order_response(order, close=closing)
    elif closing:
        response = _not_modified(order.version, close=True)
    else:
        await streaming.send_error(scope, receive, send, refused)
        return
    await response(scope, receive, send)


# -- event streams ------------------------------------------------------------------------------


def _last_event_id(scope: Scope, params: dict[str, list[str]]) -> int | None:
    given = streaming.header(scope, b"last-event-id")
    if given is None and params.get("last_event_id"):
        given = params["last_event_id"][-1]
    return streaming.parse_last_event_id(given)


def _event_types(params: dict[str, list[str]]) -> frozenset[str] | None:
    wanted = {t.strip() for value in params.get("type", ()) for t in value.split(",") if t.strip()}
    unknown = wanted - EVENT_TYPES
    if unknown:
        raise InvalidValue(
            "unknown_event_type",
            f"unknown event type {sorted(unknown)[0]!r}; known: {', '.join(sorted(EVENT_TYPES))}",
            field="type",
        )
    return frozenset(wanted) or None


async def _active(state: Any, who: Principal) -> bool:
    account_active: Callable[[str], Awaitable[bool]] = state.account_active
    return await account_active(who.user_id)


def _too_long(name: str) -> RequestValidationError:
    # the same problem FastAPI's validation gives an over-long id on every other route
    reason = f"String should have at most {_MAX_ID} characters"
    return RequestValidationError([{"loc": ("path", name), "msg": reason, "type": "too_long"}])


async def _head_only(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": streaming.SSE_HEADERS})
    await send({"type": "http.response.body", "body": b""})


async def _no_content(send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class _Stream:
    """What one event stream follows and how it starts."""

    def __init__(
        self,
        *,
        order_id: str | None,
        after: int | None,
        accept: Callable[[Change], bool] = lambda change: True,
        ends_after: Callable[[Change], bool] = lambda change: False,
        final: bool = False,
        recheck: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.order_id = order_id
        self.recheck = recheck
        self.after = after
        self.accept = accept
        self.ends_after = ends_after
        self.final = final  # the order will not change any more


async def _serve(scope: Scope, receive: Receive, send: Send, who: Principal, spec: _Stream) -> None:
    """Follow, replay what the client missed, then stream live events until the end."""
    state = _state(scope)
    notifier: Notifier = state.notifier
    stream = streaming.EventStream(
        send,
        after=spec.after or 0,
        retry_ms=state.settings.realtime_retry_ms,
        accept=spec.accept,
        ends_after=spec.ends_after,
        expires_at=who.expires_at,
        recheck=spec.recheck,
    )
    try:
        horizon = await notifier.follow(
            stream, aggregate_type=AGGREGATE, aggregate_id=spec.order_id, stream=True
        )
    except Exception as exc:
        await streaming.send_error(scope, receive, send, exc)
        return
    try:
        first: list[Change] = []
        if spec.order_id is None and spec.after is None:
            stream.last_seq = horizon  # the all-orders stream starts with the next event
        else:
            first = await _history(state, spec, stream.last_seq, horizon)
        if spec.final and not first:
            await _no_content(send)
            return
        await stream.open()
        if await _replay(state, spec, stream, first, horizon):
            stream.go_live()
            await stream.hold(receive)
    except Exception as exc:
        if not stream.started:
            await streaming.send_error(scope, receive, send, exc)
        else:  # the history could not be read: the client resumes from what it got
            log.warning("event stream ended early: %s", type(exc).__name__)
            with contextlib.suppress(Exception):
                await stream.close("retry")
    finally:
        notifier.unfollow(stream, aggregate_type=AGGREGATE, aggregate_id=spec.order_id)


async def _history(state: Any, spec: _Stream, after: int, horizon: int) -> list[Change]:
    return await notify.history(
        state.notifier.db,
        aggregate_type=AGGREGATE,
        aggregate_id=spec.order_id,
        after=after,
        upto=horizon,
    )


async def _replay(
    state: Any, spec: _Stream, stream: streaming.EventStream, first: list[Change], horizon: int
) -> bool:
    """Write history page by page; False when the stream ended in it."""
    page = first
    while page:
        if not await stream.replay(page):
            return False
        if len(page) < notify.HISTORY_PAGE:
            break
        page = await _history(state, spec, page[-1].seq, horizon)
    return True


class OrderEvents:
    """``GET /v1/orders/{order_id}/events``: one order's events, for its owner or staff."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD":
            await _head_only(send)
            return
        state = _state(scope)
        params = streaming.query(scope)
        try:
            who = streaming.authenticate(scope, state.tokens, params=params)
            order_id = str(scope["path_params"]["order_id"])
            if len(order_id) > _MAX_ID:
                raise _too_long("order_id")
            after = _last_event_id(scope, params)
            head: OrderHead = await state.orders.head(who, order_id)
        except Exception as exc:
            await streaming.send_error(scope, receive, send, exc)
            return
        spec = _Stream(
            order_id=order_id,
            after=after,
            ends_after=lambda change: change.event_type in FINAL_EVENTS,
            final=head.status.value in FINAL_STATUSES,
        )
        await _serve(scope, receive, send, who, spec)


class AllOrderEvents:
    """``GET /v1/events``: every order event, for staff, optionally of some types only."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD":
            await _head_only(send)
            return
        state = _state(scope)
        params = streaming.query(scope)
        try:
            who = streaming.authenticate(scope, state.tokens, params=params)
            if not who.is_staff:
                raise PermissionDenied("staff_only", "only staff may follow every order")
            if not await _active(state, who):
                raise AuthenticationFailed("account_inactive", "this account has been deactivated")
            after = _last_event_id(scope, params)
            types = _event_types(params)
        except Exception as exc:
            await streaming.send_error(scope, receive, send, exc)
            return
        accept = (lambda change: True) if types is None else (lambda c: c.event_type in types)
        spec = _Stream(
            order_id=None,
            after=after,
            accept=accept,
            recheck=lambda: _active(state, who),  # staff powers end with the account
        )
        await _serve(scope, receive, send, who, spec)


def install(app: FastAPI) -> None:
    """Add the long-poll middleware and the event stream routes to the application.

    Call it before any other middleware is added, so the long poll sits innermost, behind the
    request id and the other middleware, like every other route.
    """
    app.router.routes.append(Route("/v1/orders/{order_id}/events", OrderEvents(), methods=["GET"]))
    app.router.routes.append(Route("/v1/events", AllOrderEvents(), methods=["GET"]))
    app.add_middleware(LongPollMiddleware)
