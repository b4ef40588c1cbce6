"""The event stream routes in the OpenAPI document (FastAPI sees only its own routes)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from mercato.orders.realtime.common import EVENT_TYPES, MAX_ID


def document(app: FastAPI) -> None:
    """Add the stream routes to the application's OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            build()["paths"].update(_stream_paths())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


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
        _param("Last-Event-ID", "header", "Resume after this event id (EventSource sends it)."),
        _param("last_event_id", "query", "The same, for clients that cannot set headers."),
        _param("access_token", "query", "The bearer token, for EventSource (no headers)."),
    ]
    problem: dict[str, Any] = {"application/problem+json": {}}
    responses = {
        "200": {
            "description": "`text/event-stream`: `id` is the outbox sequence number, `event` "
            "the type, `data` the event as JSON; a `: keep-alive` comment every "
            "`MERCATO_REALTIME_HEARTBEAT_S`; `event: reconnect` when the server ends it.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        "401": {"description": "No, a forged or an expired token", "content": problem},
        "422": {"description": "A malformed Last-Event-ID (or type)", "content": problem},
        "503": {"description": "Too many waiting, or shutting down", "content": problem},
    }
    doc = "(docs/realtime.md)"
    one = {
        "tags": ["orders"],
        "summary": "Follow one order's events (Server-Sent Events)",
        "description": "History after `Last-Event-ID` (all of it without), then live events; "
        f"ends after OrderDelivered or OrderCancelled {doc}.",
        "security": [{"HTTPBearer": []}],
        "parameters": [_param("order_id", "path", "The order", maxLength=MAX_ID), *resume],
        "responses": {
            **responses,
            "204": {"description": "The order is final and nothing came after Last-Event-ID"},
            "404": {"description": "No such order, or not yours", "content": problem},
        },
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
        "responses": {**responses, "403": {"description": "Staff only", "content": problem}},
    }
    return {
        "/v1/orders/{order_id}/events": {"get": {"operationId": "follow_order", **one}},
        "/v1/events": {"get": {"operationId": "follow_all_orders", **every}},
    }
