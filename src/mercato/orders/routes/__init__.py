"""HTTP API of orders: drafts, checkout, fulfilment and cancellation (the request and response
models are in :mod:`mercato.orders.routes.models`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import TypeAdapter

from mercato.kernel.errors import InvalidValue
from mercato.orders.domain import ErrorCode, Order, Status
from mercato.orders.routes.answers import (
    CANCEL,
    CREATE,
    CREATED,
    DISCOUNT,
    FULFIL,
    LINE,
    LINES,
    ORDER,
    PLACE,
    PLACED,
    SEE,
)
from mercato.orders.routes.models import (
    AddressesUpdate,
    CancelOrder,
    DiscountUpdate,
    LineCreate,
    OrderCreate,
    OrderPage,
    OrderRead,
    PaymentRead,
    PlaceOrder,
    QuantityUpdate,
    ShipOrder,
)
from mercato.orders.service import NewLine, OrdersService
from mercato.platform.deps import (
    CurrentUser,
    IfMatch,
    ResourceId,
    authenticator,
    parse_if_match,
)
from mercato.platform.pagination import DEFAULT_PAGE, MAX_PAGE, decode_cursor
from mercato.platform.routing import InFront, answered_directly, in_front
from mercato.platform.schemas import Text
from mercato.platform.security import Principal
from mercato.platform.switches import Switch, Switches, requirement
from mercato.platform.throttle import Guard, client_address

__all__ = ["OrderRead", "Service", "router"]

router = APIRouter(prefix="/v1/orders", tags=["orders"])


async def _service(request: Request) -> OrdersService:
    service: OrdersService = request.app.state.orders
    return service


Service = Annotated[OrdersService, Depends(_service)]


def _unknown_code(exc: Exception) -> bool:
    return isinstance(exc, InvalidValue) and exc.code == ErrorCode.INVALID_DISCOUNT


def _code_attempt(
    request: Request, user: Principal, code: str | None
) -> AbstractAsyncContextManager[None]:
    """Trying a discount code: unknown codes are throttled per customer and per address."""
    if code is None:
        return contextlib.nullcontext()
    guard: Guard = request.app.state.container.discount_guard
    address = client_address(request.client)
    return guard.attempt(user.user_id, address=address, failed=_unknown_code)


def _read(order: Order, response: Response) -> OrderRead:
    response.headers["ETag"] = f'"{order.version}"'
    return OrderRead.of(order)


@dataclass(frozen=True, slots=True)
class OrderCall:
    """A command on one order as its request states it: the order, the caller, the service, the
    If-Match header, and the response whose ETag the answer sets."""

    order_id: str
    user: Principal
    service: OrdersService
    if_match: str | None
    response: Response

    @property
    def expected_version(self) -> int | None:
        """The version If-Match names, if any."""
        return parse_if_match(self.if_match)

    def answer(self, order: Order) -> OrderRead:
        """The order as the response body, with its version as the ETag."""
        return _read(order, self.response)


async def _order_call(
    order_id: ResourceId,
    user: CurrentUser,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> OrderCall:
    return OrderCall(order_id, user, service, if_match, response)


@dataclass(frozen=True, slots=True)
class LineCall(OrderCall):
    """A command on one line of an order (the product's id comes second in the path)."""

    product_id: str


async def _line_call(
    order_id: ResourceId,
    product_id: ResourceId,
    user: CurrentUser,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> LineCall:
    return LineCall(order_id, user, service, if_match, response, product_id)


Call = Annotated[OrderCall, Depends(_order_call)]
OnLine = Annotated[LineCall, Depends(_line_call)]


@router.post("", status_code=201, response_model=OrderRead, openapi_extra=CREATE, responses=CREATED)
async def create_order(
    body: OrderCreate, user: CurrentUser, service: Service, response: Response, request: Request
) -> OrderRead:
    """Start a draft order, optionally with lines, addresses and a discount code.

    Repeated unknown discount codes answer 429 with Retry-After (MERCATO_DISCOUNT_* settings);
    a discount code while discount codes are switched off answers 503 ``switched_off``.
    """
    if body.discount_code is not None:
        switches: Switches = request.app.state.switches
        await switches.require(Switch.DISCOUNT_CODES)
    async with _code_attempt(request, user, body.discount_code):
        order = await service.create(
            user,
            currency=body.currency,
            lines=[NewLine(ln.product_id, ln.quantity) for ln in body.lines],
            shipping_address=body.shipping_address.to_domain() if body.shipping_address else None,
            billing_address=body.billing_address.to_domain() if body.billing_address else None,
            discount_code=body.discount_code,
        )
    response.headers["Location"] = f"/v1/orders/{order.id}"
    return _read(order, response)


@router.get("", response_model=OrderPage)
async def list_orders(
    user: CurrentUser,
    service: Service,
    status: Status | None = None,
    customer_id: Annotated[Text | None, Query(max_length=36, description="staff only")] = None,
    cursor: Annotated[Text | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> OrderPage:
    """Your orders, newest first (staff: everyone's, filterable by customer and status)."""
    page = await service.list_orders(
        user, status=status, customer_id=customer_id, before=decode_cursor(cursor), limit=limit
    )
    return OrderPage(items=[OrderRead.of(o) for o in page.items], next_cursor=page.next_cursor)


@router.get("/{order_id}/payments", response_model=list[PaymentRead], openapi_extra=SEE)
async def list_payments(
    order_id: ResourceId, user: CurrentUser, service: Service
) -> list[PaymentRead]:
    """Every payment attempt of an order."""
    return [PaymentRead.of(p) for p in await service.payments(user, order_id)]


@router.post("/{order_id}/lines", response_model=OrderRead, openapi_extra=LINES)
async def add_line(body: LineCreate, call: Call) -> OrderRead:
    """Add a product to a draft (adding it again raises its quantity)."""
    order = await call.service.add_line(
        call.user,
        call.order_id,
        product_id=body.product_id,
        quantity=body.quantity,
        expected_version=call.expected_version,
    )
    return call.answer(order)


@router.put("/{order_id}/lines/{product_id}", response_model=OrderRead, openapi_extra=LINE)
async def set_line_quantity(body: QuantityUpdate, call: OnLine) -> OrderRead:
    """Set the quantity of a product on a draft."""
    order = await call.service.set_line_quantity(
        call.user,
        call.order_id,
        product_id=call.product_id,
        quantity=body.quantity,
        expected_version=call.expected_version,
    )
    return call.answer(order)


@router.delete("/{order_id}/lines/{product_id}", response_model=OrderRead, openapi_extra=LINE)
async def remove_line(call: OnLine) -> OrderRead:
    """Remove a product from a draft."""
    order = await call.service.remove_line(
        call.user, call.order_id, product_id=call.product_id, expected_version=call.expected_version
    )
    return call.answer(order)


@router.put("/{order_id}/addresses", response_model=OrderRead, openapi_extra=ORDER)
async def set_addresses(body: AddressesUpdate, call: Call) -> OrderRead:
    """Set the shipping address (and billing address, which defaults to it)."""
    order = await call.service.set_addresses(
        call.user,
        call.order_id,
        shipping=body.shipping_address.to_domain(),
        billing=body.billing_address.to_domain() if body.billing_address else None,
        expected_version=call.expected_version,
    )
    return call.answer(order)


@router.put(
    "/{order_id}/discount",
    response_model=OrderRead,
    dependencies=[Depends(requirement(Switch.DISCOUNT_CODES))],
    openapi_extra=DISCOUNT,
)
async def apply_discount(body: DiscountUpdate, call: Call, request: Request) -> OrderRead:
    """Apply a percentage discount code to a draft.

    Repeated unknown codes answer 429 with Retry-After (MERCATO_DISCOUNT_* settings).
    """
    async with _code_attempt(request, call.user, body.code):
        order = await call.service.apply_discount(
            call.user, call.order_id, code=body.code, expected_version=call.expected_version
        )
    return call.answer(order)


@router.delete("/{order_id}/discount", response_model=OrderRead, openapi_extra=ORDER)
async def remove_discount(call: Call) -> OrderRead:
    """Remove the discount code from a draft."""
    order = await call.service.apply_discount(
        call.user, call.order_id, code=None, expected_version=call.expected_version
    )
    return call.answer(order)


_ORDER_ID = TypeAdapter(ResourceId)
_IF_MATCH = TypeAdapter(IfMatch)


def _json(request: Request, body: bytes) -> object:
    # the one media type taken here; FastAPI's handler decides about every other
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/json":
        raise ValueError(kind)
    return json.loads(body)  # as FastAPI's handler parses it


async def _place_directly(request: Request) -> Response | None:
    """Answer a well-formed placement as :func:`place_order` would, without FastAPI's dependency
    resolution and response validation; None (FastAPI's handler answers) for anything else.

    The busiest command of a shop: the same checks in the same order as FastAPI's handler on
    valid input (the checkout switch, then the caller, then the command), the same answer.
    """
    body = await request.body()
    try:
        order_id: str = request.path_params["order_id"]
        _ORDER_ID.validate_python(order_id)  # kept as given: valid means unchanged
        if_match = _IF_MATCH.validate_python(request.headers.get("if-match"))
        command = PlaceOrder.model_validate(_json(request, body))
    except (ValueError, RecursionError):  # a ValidationError is a ValueError
        return None
    await request.app.state.switches.require(Switch.CHECKOUT)
    user = await authenticator(request).require(request.headers.get("authorization"))
    service: OrdersService = request.app.state.orders
    order = await service.place(
        user,
        order_id,
        card_number=command.card_number,
        payment_method=command.payment_method,
        expected_version=parse_if_match(if_match),
    )
    return Response(
        OrderRead.of(order).model_dump_json(),
        media_type="application/json",
        headers={"ETag": f'"{order.version}"'},
    )


async def place_order(body: PlaceOrder, call: Call) -> OrderRead:
    """Reserve the stock, charge the payment method (or test card) and place the order.

    A declined card answers 402 and a provider failure 503; either way nothing stays reserved
    and the order is a draft again that can be placed once more.
    """
    # Well-formed requests are answered by _place_directly; this answers the rest (and documents
    # the operation).
    order = await call.service.place(
        call.user,
        call.order_id,
        card_number=body.card_number,
        payment_method=body.payment_method,
        expected_version=call.expected_version,
    )
    return call.answer(order)


router.add_api_route(
    "/{order_id}/place",
    place_order,
    methods=["POST"],
    response_model=OrderRead,
    dependencies=[Depends(requirement(Switch.CHECKOUT))],
    openapi_extra=PLACE,
    responses=PLACED,
    route_class_override=answered_directly(_place_directly),
)


@router.post("/{order_id}/confirm", response_model=OrderRead, openapi_extra=FULFIL)
async def confirm_order(call: Call) -> OrderRead:
    """Accept a placed order (staff only)."""
    order = await call.service.confirm(
        call.user, call.order_id, expected_version=call.expected_version
    )
    return call.answer(order)


@router.post("/{order_id}/ship", response_model=OrderRead, openapi_extra=FULFIL)
async def ship_order(call: Call, body: ShipOrder | None = None) -> OrderRead:
    """Mark a confirmed order as shipped, with an optional tracking code (staff only)."""
    order = await call.service.ship(
        call.user,
        call.order_id,
        tracking_code=body.tracking_code if body else "",
        expected_version=call.expected_version,
    )
    return call.answer(order)


@router.post("/{order_id}/deliver", response_model=OrderRead, openapi_extra=FULFIL)
async def deliver_order(call: Call) -> OrderRead:
    """Mark a shipped order as delivered (staff only)."""
    order = await call.service.deliver(
        call.user, call.order_id, expected_version=call.expected_version
    )
    return call.answer(order)


@router.post("/{order_id}/cancel", response_model=OrderRead, openapi_extra=CANCEL)
async def cancel_order(call: Call, body: CancelOrder | None = None) -> OrderRead:
    """Cancel a draft, placed or confirmed order; a paid order is restocked and refunded."""
    order = await call.service.cancel(
        call.user,
        call.order_id,
        reason=body.reason if body else "",
        expected_version=call.expected_version,
    )
    return call.answer(order)


IN_FRONT: dict[Callable[..., Any], InFront] = {place_order: in_front(_place_directly)}
"""The routes answered in front of FastAPI's routing, by endpoint."""
