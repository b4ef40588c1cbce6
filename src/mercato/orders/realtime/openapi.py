"""The event stream routes in the OpenAPI document (FastAPI sees only its own routes)."""

from __future__ import annotations

from typing import Any

from mercato.orders.realtime.common import EVENT_TYPES, MAX_ID
from mercato.platform.openapi import PROBLEMS_KEY
from mercato.platform.schemas import LINE_PATTERN


def document(openapi: dict[str, Any]) -> None:
    """Add the stream routes to an OpenAPI document (an extension for
    :func:`mercato.platform.openapi.install`, which then adds the platform's error answers)."""
    openapi["paths"].update(_stream_paths())


_EVENT = {
    "type": "object",
    "description": "One event of the stream",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {"type": "string", "description": "The event as JSON"},
        "retry": {"type": "integer"},
    },
}
_EVENT_ID = "^[0-9]{0,18}$"  # as streaming.parse_last_event_id reads it (empty: none)

_REFUSALS = {
    "422": ["unknown_event_type", "invalid_last_event_id"],
    "503": ["too_many_waiting", "shutting_down", "switched_off"],
}


def _param(name: str, where: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema if "type" in schema else {"type": "string", **schema},
    }


def _stream_paths() -> dict[str, Any]:
    resume = [
        _param(
            "Last-Event-ID",
            "header",
            "Resume after this event id (EventSource sends it).",
            pattern=_EVENT_ID,
        ),
        _param(
            "last_event_id",
            "query",
            "The same, for clients that cannot set headers.",
            pattern=_EVENT_ID,
        ),
        _param("access_token", "query", "The bearer token, for EventSource (no headers)."),
    ]
    responses = {
        "200": {
            "description": "`text/event-stream`: `id` is the outbox sequence number, `event` "
            "the type, `data` the event as JSON; a `: keep-alive` comment every "
            "`MERCATO_REALTIME_HEARTBEAT_S`; `event: reconnect` when the server ends it.",
            "content": {"text/event-stream": {"schema": _EVENT}},
        },
    }
    doc = "(docs/realtime.md)"
    one = {
        "tags": ["orders"],
        "summary": "Follow one order's events (Server-Sent Events)",
        "description": "History after `Last-Event-ID` (all of it without), then live events; "
        f"ends after OrderDelivered or OrderCancelled {doc}.",
        "security": [{"HTTPBearer": []}],
        "parameters": [
            _param("order_id", "path", "The order", maxLength=MAX_ID, pattern=LINE_PATTERN),
            *resume,
        ],
        "responses": {
            **responses,
            "204": {"description": "The order is final and nothing came after Last-Event-ID"},
        },
        PROBLEMS_KEY: {"404": ["order_not_found"], **_REFUSALS},
    }
    types = {"type": "array", "items": {"type": "string", "enum": sorted(EVENT_TYPES)}}
    every = {
        "tags": ["orders"],
        "summary": "Follow every order event (staff; Server-Sent Events)",
        "description": f"In event log order; without Last-Event-ID from the next event {doc}.",
        "security": [{"HTTPBearer": []}],
        "parameters": [
            _param("type", "query", "Only these types (repeat, or comma-separated)", **types),
            *resume,
        ],
        "responses": responses,
        PROBLEMS_KEY: {"403": ["staff_only"], **_REFUSALS},
    }
    return {
        "/v1/orders/{order_id}/events": {"get": {"operationId": "follow_order", **one}},
        "/v1/events": {"get": {"operationId": "follow_all_orders", **every}},
    }
