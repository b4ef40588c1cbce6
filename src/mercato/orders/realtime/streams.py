"""Server-Sent Events: one order's events, and every order event for staff.

* ``GET /v1/orders/{id}/events`` (its owner or staff): first the order's history after
  ``Last-Event-ID`` (all of it without one), then live events. The stream ends after
  ``OrderDelivered`` or ``OrderCancelled``; a reconnect after that is answered 204, which tells
  ``EventSource`` to stop.
* ``GET /v1/events`` (staff): every order event in event-log order, optionally only some types
  (``?type=OrderPlaced&type=OrderCancelled`` or comma-separated); without ``Last-Event-ID`` it
  starts with the next event.

Every stream ends with its account: the caller's account is checked (by the application's
:class:`~mercato.platform.security.Authenticator`) when the stream opens and every fourth
heartbeat after, and a stream whose account was deactivated or changed role ends with a
``reconnect`` event whose reason is ``account_inactive``.

Every event's ``id`` is its outbox sequence number, so resuming loses and repeats nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from starlette.types import Receive, Scope, Send

from mercato.kernel.errors import InvalidValue, PermissionDenied
from mercato.orders.realtime.common import (
    AGGREGATE,
    EVENT_TYPES,
    FINAL_EVENTS,
    FINAL_STATUSES,
    State,
)
from mercato.orders.service import OrderHead
from mercato.platform import event_log, held, streaming
from mercato.platform.event_log import Change
from mercato.platform.http import header, query
from mercato.platform.problems import send_error
from mercato.platform.security import Principal
from mercato.platform.switches import Switch

log = logging.getLogger("mercato.orders")


def _last_event_id(scope: Scope, params: dict[str, list[str]]) -> int | None:
    given = header(scope, b"last-event-id")
    if given is None and params.get("last_event_id"):
        return streaming.parse_last_event_id(params["last_event_id"][-1], field="last_event_id")
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


async def _head_only(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": streaming.SSE_HEADERS})
    await send({"type": "http.response.body", "body": b""})


async def _no_content(send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


class _Stream:
    """What one event stream follows and how it starts."""

    __slots__ = ("accept", "after", "ends_after", "final", "order_id")

    def __init__(
        self,
        *,
        order_id: str | None,
        after: int | None,
        accept: Callable[[Change], bool] = lambda change: True,
        ends_after: Callable[[Change], bool] = lambda change: False,
        final: bool = False,
    ) -> None:
        self.order_id = order_id
        self.after = after
        self.accept = accept
        self.ends_after = ends_after
        self.final = final  # the order will not change any more


async def _serve(scope: Scope, receive: Receive, send: Send, who: Principal, spec: _Stream) -> None:
    """Follow, replay what the client missed, then stream live events until the end."""
    state: State = scope["app"].state
    stream = streaming.EventStream(
        send,
        after=spec.after or 0,
        retry_ms=state.settings.realtime_retry_ms,
        accept=spec.accept,
        ends_after=spec.ends_after,
        expires_at=who.expires_at,
        recheck=lambda: state.auth.allowed(who),  # authority ends with the account
    )
    notifier = state.notifier
    try:
        horizon = await notifier.follow(
            stream, aggregate_type=AGGREGATE, aggregate_id=spec.order_id, stream=True
        )
    except Exception as exc:
        await send_error(scope, receive, send, exc)
        return
    try:
        await _run(state, spec, stream, horizon, receive, send)
    except Exception as exc:
        if not stream.started:
            await send_error(scope, receive, send, exc)
        else:  # the history could not be read: the client resumes from what it got
            log.warning("event stream ended early: %s", type(exc).__name__)
            with contextlib.suppress(Exception):
                await stream.close("retry")
    finally:
        notifier.unfollow(stream, aggregate_type=AGGREGATE, aggregate_id=spec.order_id)


async def _run(
    state: State,
    spec: _Stream,
    stream: streaming.EventStream,
    horizon: int,
    receive: Receive,
    send: Send,
) -> None:
    """Replay the history up to ``horizon``, then hold the stream live."""
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


async def _history(state: State, spec: _Stream, after: int, horizon: int) -> list[Change]:
    return await event_log.history(
        state.notifier.db,
        aggregate_type=AGGREGATE,
        aggregate_id=spec.order_id,
        after=after,
        upto=horizon,
    )


async def _replay(
    state: State, spec: _Stream, stream: streaming.EventStream, first: list[Change], horizon: int
) -> bool:
    """Write history page by page; False when the stream ended in it."""
    page = first
    while page:
        if not await stream.replay(page):
            return False
        if len(page) < event_log.HISTORY_PAGE:
            break
        page = await _history(state, spec, page[-1].seq, horizon)
    return True


class _Events:
    """An event-stream app: HEAD, authentication and refusals as problems are shared;
    :meth:`spec` says, for the authenticated caller, what the stream follows.

    ``gated``: refused while following orders is switched off (the API's streams are; the
    console's, which staff use to watch the shop, is not).
    """

    __slots__ = ("gated",)

    def __init__(self, *, gated: bool = False) -> None:
        self.gated = gated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD":
            await _head_only(send)
            return
        state: State = scope["app"].state
        params = query(scope)
        try:
            if self.gated:
                await state.switches.require(Switch.REALTIME)
            who = await held.authenticate(scope, state.auth, params=params)
            spec = await self.spec(scope, state, params, who)
        except Exception as exc:
            await send_error(scope, receive, send, exc)
            return
        await _serve(scope, receive, send, who, spec)

    async def spec(
        self, scope: Scope, state: State, params: dict[str, list[str]], who: Principal
    ) -> _Stream:
        raise NotImplementedError


class OrderEvents(_Events):
    """``GET /v1/orders/{order_id}/events``: one order's events, for its owner or staff (the
    route has validated the order id)."""

    __slots__ = ()

    async def spec(
        self, scope: Scope, state: State, params: dict[str, list[str]], who: Principal
    ) -> _Stream:
        order_id: str = scope["path_params"]["order_id"]
        after = _last_event_id(scope, params)
        head: OrderHead = await state.orders.head(who, order_id)
        return _Stream(
            order_id=order_id,
            after=after,
            ends_after=lambda change: change.event_type in FINAL_EVENTS,
            final=head.status.value in FINAL_STATUSES,
        )


class AllOrderEvents(_Events):
    """``GET /v1/events``: every order event, for staff, optionally of some types only."""

    __slots__ = ()

    async def spec(
        self, scope: Scope, state: State, params: dict[str, list[str]], who: Principal
    ) -> _Stream:
        if not who.is_staff:
            raise PermissionDenied("staff_only", "only staff may follow every order")
        after = _last_event_id(scope, params)
        types = _event_types(params)
        accept = (lambda change: True) if types is None else (lambda c: c.event_type in types)
        return _Stream(order_id=None, after=after, accept=accept)
