"""HTTP API of orders: drafts, checkout, fulfilment and cancellation."""

from __future__ import annotations

import contextlib
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mercato.kernel.errors import InvalidValue
from mercato.kernel.values import MAX_QUANTITY, Address
from mercato.orders.domain import MAX_LINES, ErrorCode, Order, OrderLine, Status, Totals
from mercato.orders.service import NewLine, OrdersService
from mercato.payments import Payment
from mercato.platform.deps import CurrentUser, IfMatch, ResourceId, parse_if_match
from mercato.platform.pagination import DEFAULT_PAGE, MAX_PAGE, decode_cursor
from mercato.platform.schemas import MoneyModel, Text
from mercato.platform.security import Principal
from mercato.platform.streaming import matches, parse_if_none_match
from mercato.platform.switches import Switch, requirement
from mercato.platform.throttle import Guard, client_address

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


Qty = Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True, examples=[2])]


class AddressModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, Field(max_length=200)] = ""
    street: Annotated[Text, Field(min_length=1, max_length=200, examples=["Unter den Linden 1"])]
    city: Annotated[Text, Field(min_length=1, max_length=100, examples=["Berlin"])]
    postal_code: Annotated[Text, Field(max_length=20, examples=["10117"])] = ""
    region: Annotated[Text, Field(max_length=100)] = ""
    country: Annotated[Text, Field(min_length=2, max_length=2, examples=["DE"])]

    def to_domain(self) -> Address:
        return Address(
            street=self.street,
            city=self.city,
            country=self.country,
            postal_code=self.postal_code,
            region=self.region,
            name=self.name,
        )

    @classmethod
    def of(cls, a: Address | None) -> AddressModel | None:
        # stored addresses are shown as they are, not validated again
        return None if a is None else cls.model_construct(None, **a.as_dict())


class LineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: Annotated[Text, Field(min_length=1, max_length=36)]
    quantity: Qty


class QuantityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: Qty


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: Annotated[Text | None, Field(min_length=3, max_length=3)] = None
    lines: Annotated[list[LineCreate], Field(max_length=MAX_LINES)] = []
    shipping_address: AddressModel | None = None
    billing_address: AddressModel | None = None
    discount_code: Annotated[Text | None, Field(min_length=1, max_length=40)] = None


class AddressesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shipping_address: AddressModel
    billing_address: AddressModel | None = None


class DiscountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[Text, Field(min_length=1, max_length=40, examples=["WELCOME10"])]


class PlaceOrder(BaseModel):
    """How the order is paid: a payment method id from the provider's client library (Stripe.js)
    or, in test mode, a card number; exactly one of the two (checked with the payment rules)."""

    model_config = ConfigDict(extra="forbid")
    card_number: Annotated[
        Text | None, Field(min_length=12, max_length=23, examples=["4242 4242 4242 4242"])
    ] = None
    payment_method: Annotated[
        Text | None, Field(min_length=3, max_length=255, examples=["pm_card_visa"])
    ] = None


class ShipOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tracking_code: Annotated[Text, Field(max_length=100)] = ""


class CancelOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[Text, Field(max_length=500)] = ""


class LineRead(BaseModel):
    product_id: str
    sku: str
    name: str
    unit_price: MoneyModel
    quantity: int
    weight_grams: int
    total: MoneyModel

    @classmethod
    def of(cls, ln: OrderLine) -> LineRead:
        return cls(
            product_id=ln.product_id,
            sku=ln.sku,
            name=ln.name,
            unit_price=MoneyModel.of(ln.unit_price),
            quantity=ln.quantity.value,
            weight_grams=ln.weight_grams,
            total=MoneyModel.of(ln.total),
        )


class TotalsRead(BaseModel):
    subtotal: MoneyModel
    discount: MoneyModel
    shipping: MoneyModel
    tax: MoneyModel
    total: MoneyModel

    @classmethod
    def of(cls, t: Totals) -> TotalsRead:
        return cls(
            subtotal=MoneyModel.of(t.subtotal),
            discount=MoneyModel.of(t.discount),
            shipping=MoneyModel.of(t.shipping),
            tax=MoneyModel.of(t.tax),
            total=MoneyModel.of(t.total),
        )


class OrderRead(BaseModel):
    id: str
    customer_id: str
    status: Status
    currency: str
    lines: list[LineRead]
    totals: TotalsRead
    shipping_address: AddressModel | None
    billing_address: AddressModel | None
    discount_code: str | None
    discount_percent: int
    payment_in_progress: bool
    tracking_code: str | None
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime
    placed_at: datetime | None
    version: int

    @classmethod
    def of(cls, o: Order) -> OrderRead:
        return cls(
            id=o.id,
            customer_id=o.customer_id,
            status=o.status,
            currency=o.currency,
            lines=[LineRead.of(ln) for ln in o.lines.values()],
            totals=TotalsRead.of(o.totals or Totals.zero(o.currency)),
            shipping_address=AddressModel.of(o.shipping_address),
            billing_address=AddressModel.of(o.billing_address),
            discount_code=o.discount_code,
            discount_percent=o.discount_percent,
            payment_in_progress=o.in_checkout,
            tracking_code=o.tracking_code,
            cancel_reason=o.cancel_reason,
            created_at=o.created_at,
            updated_at=o.updated_at,
            placed_at=o.placed_at,
            version=o.version,
        )


class OrderPage(BaseModel):
    items: list[OrderRead]
    next_cursor: str | None


class PaymentRead(BaseModel):
    id: str
    order_id: str
    amount: MoneyModel
    status: str
    provider: str
    card_last4: str
    failure_reason: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Payment) -> PaymentRead:
        return cls(
            id=p.id,
            order_id=p.order_id,
            amount=MoneyModel.of(p.amount),
            status=p.status.value,
            provider=p.provider,
            card_last4=p.card_last4,
            failure_reason=p.failure_reason,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


def _read(order: Order, response: Response) -> OrderRead:
    response.headers["ETag"] = f'"{order.version}"'
    return OrderRead.of(order)


@router.post("", status_code=201, response_model=OrderRead)
async def create_order(
    body: OrderCreate, user: CurrentUser, service: Service, response: Response, request: Request
) -> OrderRead:
    """Start a draft order, optionally with lines, addresses and a discount code.

    Repeated unknown discount codes answer 429 with Retry-After (MERCATO_DISCOUNT_* settings).
    """
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


IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        max_length=256,
        description='The version you have, as its ETag (`"3"`): 304 while it is current.',
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


@router.get(
    "/{order_id}",
    response_model=OrderRead,
    responses={304: {"description": "Not modified: the version in If-None-Match is current"}},
)
async def read_order(
    order_id: ResourceId,
    user: CurrentUser,
    service: Service,
    response: Response,
    if_none_match: IfNoneMatch = None,
    wait: Wait = 0,
) -> OrderRead | Response:
    """One order (yours, or any for staff), with its version as ETag.

    Poll cheaply with `If-None-Match`; add `wait` to long poll (see `docs/realtime.md`).
    """
    tags = parse_if_none_match(if_none_match)
    order = await service.get(user, order_id)
    if matches(tags, order.version):
        return Response(status_code=304, headers=_conditional_headers(order.version))
    response.headers.update(_conditional_headers(order.version))
    return OrderRead.of(order)


def _conditional_headers(version: int) -> dict[str, str]:
    # no-cache: caches may keep the order but must revalidate it (cheaply, with the ETag)
    return {"ETag": f'"{version}"', "Cache-Control": "no-cache"}


@router.get("/{order_id}/payments", response_model=list[PaymentRead])
async def list_payments(
    order_id: ResourceId, user: CurrentUser, service: Service
) -> list[PaymentRead]:
    """Every payment attempt of an order."""
    return [PaymentRead.of(p) for p in await service.payments(user, order_id)]


@router.post("/{order_id}/lines", response_model=OrderRead)
async def add_line(
    order_id: ResourceId,
    body: LineCreate,
    user: CurrentUser,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> OrderRead:
    """Add a product to a draft (adding it again raises its quantity)."""
    order = await service.add_line(
        user,
        order_id,
        product_id=body.product_id,
        quantity=body.quantity,
        expected_version=parse_if_match(if_match),
    )
    return _read(order, response)


@router.put("/{order_id}/lines/{product_id}", response_model=OrderRead)
async def set_line_quantity(
    order_id: ResourceId,
    product_id: ResourceId,
    body: QuantityUpdate,
    user: CurrentUser,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> OrderRead:
    """Set the quantity of a product on a draft."""
    order = await service.set_line_quantity(
        user,
        order_id,
        product_id=product_id,
        quantity=body.quantity,
        expected_version=parse_if_match(if_match),
    )
    return _read(order, response)


@router.delete("/{order_id}/lines/{product_id}", response_model=OrderRead)
async def remove_line(
    order_id: ResourceId,
    product_id: ResourceId,
    user: CurrentUser,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> OrderRead:
    """Remove a product from a draft."""
    order = await service.remove_line(
        user, order_id, product_id=product_id, expected_version=parse_if_match(if_match)
    )
    return _read(order, response)


@router.put("/{order_id}/addresses", response_model=OrderRead)
async def set_addresses(
    order_id: ResourceId,
    body: AddressesUpdate,
    user: CurrentUser,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> OrderRead:
    """Set the shipping address (and billing address, which defaults to it)."""
    order = await service.set_addresses(
        user,
        order_id,
        shipping=body.shipping_address.to_domain(),
        billing=body.billing_address.to_domain() if body.billing_address else None,
        expected_version=parse_if_match(if_match),
    )
    return _read(order, response)


@router.put(
    "/{order_id}/discount",
    response_model=OrderRead,
    dependencies=[Depends(requirement(Switch.DISCOUNT_CODES))],
)
async def apply_discount(
    order_id: ResourceId,
    body: DiscountUpdate,
    user: CurrentUser,
    service: Service,
    response: Response,
    request: Request,
    if_match: IfMatch = None,
) -> OrderRead:
    """Apply a percentage discount code to a draft.

    Repeated unknown codes answer 429 with Retry-After (MERCATO_DISCOUNT_* settings).
    """
    async with _code_attempt(request, user, body.code):
        order = await service.apply_discount(
            user, order_id, code=body.code, expected_version=parse_if_match(if_match)
        )
    return _read(order, response)


@router.delete("/{order_id}/discount", response_model=OrderRead)
async def remove_discount(
    order_id: ResourceId,
    user: CurrentUser,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> OrderRead:
    """Remove the discount code from a draft."""
    order = await service.apply_discount(
        user, order_id, code=None, expected_version=parse_if_match(if_match)
    )
    return _read(order, response)


@router.post(
    "/{order_id}/place",
    response_model=OrderRead,
    dependencies=[Depends(requirement(Switch.CHECKOUT))],
)
async def place_order(
    order_id: ResourceId,
    body: PlaceOrder,
    user: CurrentUser,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> OrderRead:
    """Reserve the stock, charge the payment method (or test card) and place the order.

    A declined card answers 402 and a provider failure 503; either way nothing stays reserved
    and the order is a draft again that can be placed once more.
    """
    order = await service.place(
        user,
        order_id,
        card_number=body.card_number,
        payment_method=body.payment_method,
        expected_version=parse_if_match(if_match),
    )
    return _read(order, response)


@router.post("/{order_id}/confirm", response_model=OrderRead)
async def confirm_order(
    order_id: ResourceId,
    user: CurrentUser,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> OrderRead:
    """Accept a placed order (staff only)."""
    order = await service.confirm(user, order_id, expected_version=parse_if_match(if_match))
    return _read(order, response)


@router.post("/{order_id}/ship", response_model=OrderRead)
async def ship_order(
    order_id: ResourceId,
    user: CurrentUser,
    service: Service,
    response: Response,
    body: ShipOrder | None = None,
    if_match: IfMatch = None,
) -> OrderRead:
    """Mark a confirmed order as shipped, with an optional tracking code (staff only)."""
    order = await service.ship(
        user,
        order_id,
        tracking_code=body.tracking_code if body else "",
        expected_version=parse_if_match(if_match),
    )
    return _read(order, response)


@router.post("/{order_id}/deliver", response_model=OrderRead)
async def deliver_order(
    order_id: ResourceId,
    user: CurrentUser,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> OrderRead:
    """Mark a shipped order as delivered (staff only)."""
    order = await service.deliver(user, order_id, expected_version=parse_if_match(if_match))
    return _read(order, response)


@router.post("/{order_id}/cancel", response_model=OrderRead)
async def cancel_order(
    order_id: ResourceId,
    user: CurrentUser,
    service: Service,
    response: Response,
    body: CancelOrder | None = None,
    if_match: IfMatch = None,
) -> OrderRead:
    """Cancel a draft, placed or confirmed order; a paid order is restocked and refunded."""
    order = await service.cancel(
        user,
        order_id,
        reason=body.reason if body else "",
        expected_version=parse_if_match(if_match),
    )
    return _read(order, response)
