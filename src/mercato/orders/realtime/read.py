"""``GET /v1/orders/{order_id}``: one order, polled cheaply with ``If-None-Match`` or long polled
with ``wait``.

Without ``wait`` (or with ``wait=0``) the endpoint answers at once: 304 while the version in
``If-None-Match`` is current, else the order with its version as ETag. With a positive ``wait``
the route holds the request (:class:`~mercato.orders.realtime.longpoll.OrderLongPoll`), taken
before FastAPI's handler when :func:`long_poll_of` finds the request valid, so nothing of
FastAPI's request handling stays alive while it waits.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Query, Request, Response
from pydantic import TypeAdapter, ValidationError
from starlette.types import ASGIApp, Scope

from mercato.orders.domain import Order
from mercato.orders.realtime.common import conditional_headers
from mercato.orders.realtime.longpoll import OrderLongPoll
from mercato.orders.routes import OrderRead, Service
from mercato.orders.routes.answers import READ
from mercato.platform.deps import CurrentUser, ResourceId
from mercato.platform.held import IF_NONE_MATCH_PATTERN, matches, parse_if_none_match
from mercato.platform.http import header, last_query_value
from mercato.platform.routing import Handoff, HeldRoute

PATH = "/v1/orders/{order_id}"

IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        max_length=256,
        description='The version you have, as its ETag (`"3"`): 304 while it is current.',
        json_schema_extra={"pattern": IF_NONE_MATCH_PATTERN},
    ),
]
Wait = Annotated[
    float,
    Query(
        ge=0,
        allow_inf_nan=False,
        description="Long poll: with `If-None-Match`, hold the request up to this many seconds "
        "(at most `MERCATO_REALTIME_MAX_WAIT_S`, 60 by default) until the order changes; "
        "answered at once when your version is not current. 304 when the wait ends unchanged.",
    ),
]

_ORDER_ID = TypeAdapter(ResourceId)
_WAIT = TypeAdapter(Wait)
_IF_NONE_MATCH = TypeAdapter(IfNoneMatch)


async def read_order(
    order_id: ResourceId,
    user: CurrentUser,
    service: Service,
    request: Request,
    response: Response,
    if_none_match: IfNoneMatch = None,
    wait: Wait = 0,
) -> OrderRead | Response:
    """One order (yours, or any for staff), with its version as ETag.

    Poll cheaply with `If-None-Match`; add `wait` to long poll (see `docs/realtime.md`).
    """
    if wait:
        return Handoff(OrderLongPoll(order_id, wait))
    tags = parse_if_none_match(if_none_match)
    order: Order = await service.get(user, order_id)
    if matches(tags, order.version):
        return Response(status_code=304, headers=conditional_headers(order.version))
    response.headers.update(conditional_headers(order.version))
    return OrderRead.of(order)


def long_poll_of(scope: Scope) -> ASGIApp | None:
    """The long poll a valid request with a positive ``wait`` asks for; None for the endpoint
    (which refuses invalid input naming the field, as FastAPI does)."""
    if b"wait=" not in scope.get("query_string", b""):
        return None  # a plain read: the common case, decided without parsing
    given = last_query_value(scope, "wait")
    order_id: str = scope["path_params"]["order_id"]
    try:
        wait = _WAIT.validate_python(given) if given is not None else 0.0
        _ORDER_ID.validate_python(order_id)  # kept as given: valid means unchanged
        _IF_NONE_MATCH.validate_python(header(scope, b"if-none-match"))
    except ValidationError:
        return None
    return OrderLongPoll(order_id, wait) if wait else None


def route(**options: Any) -> HeldRoute:
    """The route, held for long polls."""
    return HeldRoute(
        PATH,
        read_order,
        hold=long_poll_of,
        methods=["GET"],
        response_model=OrderRead,
        responses={304: {"description": "Not modified: the version in If-None-Match is current"}},
        openapi_extra=READ,
        operation_id="read_order",
        **options,
    )
