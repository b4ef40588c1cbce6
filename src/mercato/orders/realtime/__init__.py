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
:mod:`mercato.platform.streaming` for why), in :mod:`.longpoll` and :mod:`.streams`, and are
registered by :func:`install`; :func:`document` adds them to the OpenAPI document. What wakes
them is :mod:`mercato.platform.notify`.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import Scope

from mercato.orders.realtime.longpoll import LongPollMiddleware
from mercato.orders.realtime.openapi import document
from mercato.orders.realtime.streams import AllOrderEvents, OrderEvents
from mercato.platform import streaming
from mercato.platform.switches import Switch, SwitchGate

__all__ = ["AllOrderEvents", "LongPollMiddleware", "OrderEvents", "document", "install"]


def install(app: FastAPI) -> None:
    """Add the long-poll middleware and the event stream routes to the application.

    Call it before any other middleware is added, so the long poll sits innermost, behind the
    request id and the other middleware, like every other route.
    """
    app.router.routes.append(Route("/v1/orders/{order_id}/events", OrderEvents(), methods=["GET"]))
    app.router.routes.append(Route("/v1/events", AllOrderEvents(), methods=["GET"]))
    app.add_middleware(LongPollMiddleware)
    # outside the long poll: while real-time following is switched off, nothing is held
    app.add_middleware(SwitchGate, rules=[(follows, Switch.REALTIME)])


def follows(scope: Scope) -> bool:
    """Whether a request follows orders: an event stream, or a long poll (``wait=``)."""
    path: str = scope["path"]
    if path == "/v1/events" or (path.startswith("/v1/orders/") and path.endswith("/events")):
        return True
    if not path.startswith("/v1/orders/") or b"wait=" not in scope.get("query_string", b""):
        return False
    waits = streaming.query(scope).get("wait")
    return bool(waits and streaming.parse_wait(waits[-1]))
