"""The event stream routes: ``GET /v1/orders/{order_id}/events`` and ``GET /v1/events``.

Each is a :class:`~mercato.platform.routing.HeldRoute`: FastAPI documents and validates it from
its endpoint, and a valid request is handed to its stream (:mod:`.streams`) before FastAPI's
handler runs, so a held stream keeps nothing of FastAPI's request handling alive.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Query
from pydantic import TypeAdapter, ValidationError, WithJsonSchema
from starlette.types import ASGIApp, Scope

from mercato.orders.domain import ErrorCode
from mercato.orders.realtime.common import EVENT_TYPES
from mercato.orders.realtime.streams import AllOrderEvents, OrderEvents
from mercato.platform.deps import BEARER_SCHEME, ResourceId
from mercato.platform.openapi import problems
from mercato.platform.routing import EventStreamHandoff, HeldRoute

LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description="Resume after this event id (EventSource sends it)."),
]
LastEventIdQuery = Annotated[
    str | None, Query(description="The same, for clients that cannot set headers.")
]
AccessToken = Annotated[
    str | None, Query(description="The bearer token, for EventSource (no headers).")
]
EventType = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(EVENT_TYPES)})]
EventTypes = Annotated[
    list[EventType] | None, Query(description="Only these types (repeat, or comma-separated)")
]

_ORDER_ID = TypeAdapter(ResourceId)
ORDER_EVENTS = OrderEvents(gated=True)
ALL_ORDER_EVENTS = AllOrderEvents(gated=True)

_PROBLEM: dict[str, Any] = {"application/problem+json": {}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`text/event-stream`: `id` is the outbox sequence number, `event` the "
        "type, `data` the event as JSON; a `: keep-alive` comment every "
        "`MERCATO_REALTIME_HEARTBEAT_S`; `event: reconnect` when the server ends it.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    401: {"description": "No, a forged or an expired token", "content": _PROBLEM},
    422: {"description": "A malformed Last-Event-ID (or type)", "content": _PROBLEM},
    503: {"description": "Too many waiting, or shutting down", "content": _PROBLEM},
}


async def follow_order(
    order_id: ResourceId,
    last_event_id_header: LastEventId = None,
    last_event_id: LastEventIdQuery = None,
    access_token: AccessToken = None,
) -> EventStreamHandoff:
    """History after `Last-Event-ID` (all of it without), then live events; ends after
    OrderDelivered or OrderCancelled (docs/realtime.md)."""
    return EventStreamHandoff(ORDER_EVENTS)


async def follow_all_orders(
    type: EventTypes = None,
    last_event_id_header: LastEventId = None,
    last_event_id: LastEventIdQuery = None,
    access_token: AccessToken = None,
) -> EventStreamHandoff:
    """In event log order; without Last-Event-ID from the next event (docs/realtime.md)."""
    return EventStreamHandoff(ALL_ORDER_EVENTS)


def _order_stream(scope: Scope) -> ASGIApp | None:
    try:
        _ORDER_ID.validate_python(scope["path_params"]["order_id"])
    except ValidationError:
        return None  # the endpoint's validation refuses it, naming the field
    return ORDER_EVENTS


def _all_orders_stream(scope: Scope) -> ASGIApp:
    return ALL_ORDER_EVENTS


# what a held stream refuses before it starts (the platform adds authentication's answers)
_REFUSALS: dict[int, list[str]] = {
    422: ["unknown_event_type", "invalid_last_event_id"],
    503: ["too_many_waiting", "shutting_down", "switched_off"],
}


def routes(**options: Any) -> list[HeldRoute]:
    """The two stream routes."""
    common: dict[str, Any] = {
        "methods": ["GET"],
        "status_code": 200,
        "response_class": EventStreamHandoff,
        "dependencies": [BEARER_SCHEME],
        **options,
    }
    one = HeldRoute(
        "/v1/orders/{order_id}/events",
        follow_order,
        hold=_order_stream,
        operation_id="follow_order",
        summary="Follow one order's events (Server-Sent Events)",
        responses={
            **_RESPONSES,
            204: {"description": "The order is final and nothing came after Last-Event-ID"},
        },
        openapi_extra=problems({404: [ErrorCode.ORDER_NOT_FOUND], **_REFUSALS}),
        **common,
    )
    every = HeldRoute(
        "/v1/events",
        follow_all_orders,
        hold=_all_orders_stream,
        operation_id="follow_all_orders",
        summary="Follow every order event (staff; Server-Sent Events)",
        responses={**_RESPONSES, 403: {"description": "Staff only", "content": _PROBLEM}},
        openapi_extra=problems(_REFUSALS),
        **common,
    )
    return [one, every]
