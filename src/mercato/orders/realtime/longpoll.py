"""Long polls of ``GET /v1/orders/{id}?wait=N``: the held response of that route.

With ``If-None-Match: "<version>"``: a newer version is answered at once; otherwise the request
is held until the order's next event (200 with the order) or ``N`` seconds pass (capped by
``MERCATO_REALTIME_MAX_WAIT_S``; then the order is read again: 304 if unchanged).

A long poll wakes on the order's *events*. Editing a draft and the checkout's own bookkeeping
change the version without an event; a long poll sees those changes when its wait ends (it reads
the order again then rather than answering 304 blindly), so it is never wrong, only late.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mercato.kernel.errors import DomainError
from mercato.orders.domain import Order
from mercato.orders.realtime.common import AGGREGATE, State, conditional_headers, version
from mercato.orders.routes import OrderRead
from mercato.platform import held
from mercato.platform.event_log import Change
from mercato.platform.http import header
from mercato.platform.notify import ShuttingDown, TooManyWaiting
from mercato.platform.problems import send_error
from mercato.platform.security import Principal
from mercato.platform.switches import Switch


def _order_response(order: Order, *, close: bool = False) -> Response:
    headers = conditional_headers(order.version)
    if close:
        headers["Connection"] = "close"
    body = OrderRead.of(order).model_dump_json()
    return Response(body, 200, headers=headers, media_type="application/json")


def _not_modified(version: int, *, close: bool = False) -> Response:
    headers = conditional_headers(version)
    if close:
        headers["Connection"] = "close"  # during shutdown: come back through another replica
    return Response(status_code=304, headers=headers)


class OrderLongPoll(held.LongPoll):
    """One long poll of one order, from its order id and (positive) wait in seconds.

    It is its own ASGI app, and the notifier's subscriber: one small object per held request.
    """

    __slots__ = ("_seen", "_state", "_tags", "_who", "order_id", "seconds")

    def __init__(self, order_id: str, wait: float) -> None:
        super().__init__()
        self.order_id = order_id
        self.seconds = wait
        self._state: State
        self._who: Principal
        self._tags: frozenset[int] | None = None
        self._seen = -1  # the version read before waiting (-1: not read yet)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.bind(scope, send)
        if not await self._admitted(scope, receive, send):
            return
        notifier = self._state.notifier
        try:
            await notifier.follow(
                self, aggregate_type=AGGREGATE, aggregate_id=self.order_id, stream=False
            )
        except (TooManyWaiting, ShuttingDown) as refused:
            await self._without_waiting(scope, receive, send, refused)
            return
        except Exception as exc:
            await send_error(scope, receive, send, exc)
            return
        try:
            if await self._current(scope, receive, send):
                limit = self._state.settings.realtime_max_wait_s
                await self.wait(receive, min(self.seconds, limit), accept=self._is_news)
        except Exception as exc:
            await send_error(scope, receive, send, exc)
        finally:
            notifier.unfollow(self, aggregate_type=AGGREGATE, aggregate_id=self.order_id)

    async def _admitted(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Whether following is switched on and the caller may ask (else refused)."""
        self._state = state = scope["app"].state
        try:
            await state.switches.require(Switch.REALTIME)
            self._who = await held.authenticate(scope, state.auth)
            self._tags = held.parse_if_none_match(header(scope, b"if-none-match"))
        except DomainError as exc:
            await send_error(scope, receive, send, exc)
            return False
        return True

    async def _current(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Whether the client's version is current (so it waits); else it gets the order now."""
        orders = self._state.orders
        self._seen = (await orders.head(self._who, self.order_id)).version
        if held.matches(self._tags, self._seen):
            return True
        await _order_response(await orders.get(self._who, self.order_id))(scope, receive, send)
        return False

    def _is_news(self, change: Change) -> bool:
        return version(change) > self._seen

    async def answer(self, reason: str) -> Response:
        """The answer when the wait ends: ``changed``, ``timeout`` or ``shutdown``."""
        if reason == "shutdown" and self._seen >= 0:
            return _not_modified(self._seen, close=True)
        await self._state.auth.check(self._who)  # the account may have changed meanwhile
        orders = self._state.orders
        if reason == "timeout":
            current = await orders.head(self._who, self.order_id)
            if held.matches(self._tags, current.version):
                return _not_modified(current.version)
        return _order_response(await orders.get(self._who, self.order_id))

    async def _without_waiting(
        self, scope: Scope, receive: Receive, send: Send, refused: Exception
    ) -> None:
        """At capacity or shutting down: a client that is behind still gets the order now."""
        closing = isinstance(refused, ShuttingDown)
        try:
            order = await self._state.orders.get(self._who, self.order_id)
        except Exception as exc:
            await send_error(scope, receive, send, exc)
            return
        if not held.matches(self._tags, order.version):
            response = _order_response(order, close=closing)
        elif closing:
            response = _not_modified(order.version, close=True)
        else:
            await send_error(scope, receive, send, refused)
            return
        await response(scope, receive, send)
