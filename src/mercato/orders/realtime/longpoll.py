"""Long polls of ``GET /v1/orders/{id}?wait=N``, taken before FastAPI's routing.

With ``If-None-Match: "<version>"``: a newer version is answered at once; otherwise the request
is held until the order's next event (200 with the order) or ``N`` seconds pass (capped by
``MERCATO_REALTIME_MAX_WAIT_S``; then the order is read again: 304 if unchanged). Without
``wait`` (or with ``wait=0``, or an invalid one) the route in :mod:`mercato.orders.routes`
answers as usual.

A long poll wakes on the order's *events*. Editing a draft and the checkout's own bookkeeping
change the version without an event; a long poll sees those changes when its wait ends (it reads
the order again then rather than answering 304 blindly), so it is never wrong, only late.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mercato.kernel.errors import DomainError
from mercato.kernel.values import forbidden_character
from mercato.orders.realtime.common import AGGREGATE, MAX_ID, app_state, version
from mercato.orders.routes import OrderRead
from mercato.orders.service import OrderHead, OrdersService
from mercato.platform import streaming
from mercato.platform.notify import Notifier, ShuttingDown, TooManyWaiting
from mercato.platform.security import Authenticator, Principal

_PREFIX = "/v1/orders/"


def _order_id_in(path: str) -> str | None:
    """The id in ``/v1/orders/{id}`` (nothing after it), else None."""
    if not path.startswith(_PREFIX):
        return None
    rest = path[len(_PREFIX) :]
    # anything else goes on to the route, whose validation refuses it naming the field
    if not rest or "/" in rest or len(rest) > MAX_ID or forbidden_character(rest) is not None:
        return None
    return rest


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
    state = app_state(scope)
    orders: OrdersService = state.orders
    notifier: Notifier = state.notifier
    auth: Authenticator = state.auth
    try:
        principal = await streaming.authenticate(scope, auth)
        tags = streaming.parse_if_none_match(streaming.header(scope, b"if-none-match"))
    except DomainError as exc:
        await streaming.send_error(scope, receive, send, exc)
        return

    async def answer(reason: str) -> Response:
        if reason == "shutdown" and head is not None:
            return _not_modified(head.version, close=True)
        await auth.check(principal)  # the account may have changed while the request waited
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
            accept=lambda change: version(change) > seen,
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
    orders: OrdersService = app_state(scope).orders
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
