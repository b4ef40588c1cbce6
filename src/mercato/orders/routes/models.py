"""Request and response models of the orders API (XCreate, XUpdate, XRead)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mercato.kernel.values import COUNTRY_PATTERN, MAX_QUANTITY, Address
from mercato.orders.domain import MAX_LINES, Order, OrderLine, Status, Totals
from mercato.payments import CARD_NUMBER_PATTERN, PAYMENT_METHOD_PATTERN, Payment
from mercato.platform.schemas import CURRENCY_SCHEMA, NOT_BLANK, WHOLE, MoneyModel, Text

_VISIBLE: dict[str, Any] = {"pattern": NOT_BLANK}
Qty = Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True, examples=[2]), WHOLE]


class AddressModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[Text, Field(max_length=200)] = ""
    street: Annotated[
        Text,
        Field(
            min_length=1,
            max_length=200,
            examples=["Unter den Linden 1"],
            json_schema_extra=_VISIBLE,
        ),
    ]
    city: Annotated[
        Text, Field(min_length=1, max_length=100, examples=["Berlin"], json_schema_extra=_VISIBLE)
    ]
    postal_code: Annotated[Text, Field(max_length=20, examples=["10117"])] = ""
    region: Annotated[Text, Field(max_length=100)] = ""
    country: Annotated[
        Text,
        Field(
            min_length=2,
            max_length=2,
            examples=["DE"],
            json_schema_extra={"pattern": COUNTRY_PATTERN},
        ),
    ]

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
    currency: Annotated[
        Text | None, Field(min_length=3, max_length=3, json_schema_extra=CURRENCY_SCHEMA)
    ] = None
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

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("card_number", "payment_method")
            ]
        },
    )
    card_number: Annotated[
        Text | None,
        Field(
            min_length=12,
            max_length=23,
            examples=["4242 4242 4242 4242"],
            json_schema_extra={"pattern": CARD_NUMBER_PATTERN},
        ),
    ] = None
    payment_method: Annotated[
        Text | None,
        Field(
            min_length=3,
            max_length=255,
            examples=["pm_card_visa"],
            json_schema_extra={"pattern": PAYMENT_METHOD_PATTERN},
        ),
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
            totals=TotalsRead.of(o.totals),
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
