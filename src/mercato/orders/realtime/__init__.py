"""Following orders in real time: conditional reads, long polls and Server-Sent Events.

* ``GET /v1/orders/{id}`` (:mod:`.read`) answers 304 while the version in ``If-None-Match`` is
  current. With ``wait=N`` it is a long poll (:mod:`.longpoll`): a newer version is answered at
  once; otherwise the request is held until the order changes (200 with the order) or ``N``
  seconds pass (capped by ``MERCATO_REALTIME_MAX_WAIT_S``; 304).
* ``GET /v1/orders/{id}/events`` streams one order's events (its owner or staff): first its
  history after ``Last-Event-ID`` (all of it without one), then live events. The stream ends after
  ``OrderDelivered`` or ``OrderCancelled``; a reconnect after that is answered 204, which tells
  ``EventSource`` to stop.
* ``GET /v1/events`` streams every order event to staff, optionally only some types
  (``?type=OrderPlaced&type=OrderCancelled`` or comma-separated); without ``Last-Event-ID`` it
  starts with the next event.

Every event's ``id`` is its outbox sequence number. The three are FastAPI routes
(:class:`~mercato.platform.routing.HeldRoute`) whose held requests are answered by plain ASGI
apps (:mod:`.longpoll`, :mod:`.streams`; see :mod:`mercato.platform.routing` for why). Long
polls and the API's streams answer 503 ``switched_off`` while ``realtime`` is switched off.
What wakes them is :mod:`mercato.platform.notify`.
"""

from __future__ import annotations

from fastapi import FastAPI

from mercato.orders.realtime import follow, read
from mercato.orders.realtime.streams import AllOrderEvents

__all__ = ["AllOrderEvents", "install"]


def install(app: FastAPI) -> None:
    """Add the order read (with its long poll) and the event stream routes."""
    app.router.routes.extend([read.route(tags=["orders"]), *follow.routes(tags=["orders"])])
