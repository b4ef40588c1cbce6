"""The Order aggregate root.

State machine::

    draft --place--> placed --confirm--> confirmed --ship--> shipped --deliver--> delivered
      \\               |                    |
       +---------------+--------------------+--cancel--> cancelled

Placing happens in two steps around the payment provider: ``begin_checkout`` (stock reserved,
payment pending; the order is still a draft but frozen) and then ``complete_checkout`` (paid:
placed) or ``abort_checkout`` (declined: back to an editable draft the customer can retry).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from mercato.kernel.errors import InvalidValue, NotFound
from mercato.kernel.events import AggregateRoot
from mercato.kernel.values import Address, Quantity
from mercato.orders.domain.errors import (
    CANCELLABLE,
    CheckoutInProgress,
    ErrorCode,
    InvalidTransition,
    NotOwner,
    OrderNotDraft,
    Status,
)
from mercato.orders.domain.pricing import (
    OrderLine,
    PricingService,
    ProductInfo,
    ShippingCalculator,
    Totals,
    discount_on,
    merchandise,
)
from mercato.orders.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderPlaced,
    OrderShipped,
)

MAX_LINES = 100


@dataclass(eq=False)
class Order(AggregateRoot):
    """The Order aggregate root. All changes go through its methods."""

    id: str
    customer_id: str
    currency: str
    status: Status
    created_at: datetime
    updated_at: datetime
    totals: Totals
    lines: dict[str, OrderLine] = field(default_factory=dict)
    shipping_address: Address | None = None
    billing_address: Address | None = None
    discount_code: str | None = None
    discount_percent: int = 0
    placed_at: datetime | None = None
    checkout_payment_id: str | None = None
    cancel_reason: str | None = None
    tracking_code: str | None = None
    version: int = 1

    @classmethod
    def create(cls, *, id: str, customer_id: str, currency: str, now: datetime) -> Order:
        """An empty draft."""
        return cls(id, customer_id, currency, Status.DRAFT, now, now, Totals.zero(currency))

    # -- queries -----------------------------------------------------------------------

    @property
    def in_checkout(self) -> bool:
        """Whether a payment for this draft is under way."""
        return self.checkout_payment_id is not None

    @property
    def weight_grams(self) -> int:
        """Total parcel weight."""
        return sum(line.weight_grams * line.quantity.value for line in self.lines.values())

    def quantities(self) -> dict[str, int]:
        """Units per product."""
        return {pid: line.quantity.value for pid, line in self.lines.items()}

    def ensure_owner(self, customer_id: str) -> None:
        """Raise NotOwner unless the order belongs to the customer."""
        if self.customer_id != customer_id:
            raise NotOwner()

    # -- draft editing ------------------------------------------------------------------

    def _ensure_editable(self) -> None:
        if self.status is not Status.DRAFT:
            raise OrderNotDraft(self.status)
        if self.in_checkout:
            raise CheckoutInProgress()

    def _touch(self, now: datetime) -> None:
        self.updated_at = now
        self.version += 1

    def add_line(self, product: ProductInfo, quantity: Quantity, *, now: datetime) -> None:
        """Add units of a product; adding a product already on the order raises its quantity."""
        self._ensure_editable()
        if product.price.currency != self.currency:
            raise InvalidValue(
                ErrorCode.CURRENCY_MISMATCH,
                f"product is priced in {product.price.currency}, the order is in {self.currency}",
                field="product_id",
            )
        existing = self.lines.get(product.product_id)
        if existing is None and len(self.lines) >= MAX_LINES:
            raise InvalidValue(
                ErrorCode.TOO_MANY_LINES,
                f"an order holds at most {MAX_LINES} products",
                field="lines",
            )
        total = quantity if existing is None else existing.quantity + quantity
        self.lines[product.product_id] = OrderLine(
            product.product_id,
            product.sku,
            product.name,
            product.price,
            total,
            product.weight_grams,
        )
        self._touch(now)

    def set_quantity(self, product_id: str, quantity: Quantity, *, now: datetime) -> None:
        """Replace the quantity of a line."""
        self._ensure_editable()
        line = self._line(product_id)
        self.lines[product_id] = OrderLine(
            line.product_id, line.sku, line.name, line.unit_price, quantity, line.weight_grams
        )
        self._touch(now)

    def remove_line(self, product_id: str, *, now: datetime) -> None:
        """Take a product off the order."""
        self._ensure_editable()
        self._line(product_id)
        del self.lines[product_id]
        self._touch(now)

    def _line(self, product_id: str) -> OrderLine:
        line = self.lines.get(product_id)
        if line is None:
            raise NotFound(
                ErrorCode.LINE_NOT_FOUND,
                "the order has no line for this product",
                field="product_id",
            )
        return line

    def set_addresses(
        self, shipping: Address, billing: Address | None = None, *, now: datetime
    ) -> None:
        """Where to ship and whom to bill (billing defaults to the shipping address)."""
        self._ensure_editable()
        self.shipping_address = shipping
        self.billing_address = billing or shipping
        self._touch(now)

    def apply_discount(self, code: str | None, percent: int, *, now: datetime) -> None:
        """Use a discount code (None removes it)."""
        self._ensure_editable()
        if not 0 <= percent <= 100:
            raise InvalidValue(
                ErrorCode.INVALID_DISCOUNT, "discount must be 0-100 %", field="discount_code"
            )
        self.discount_code = code.strip().upper() if code else None
        self.discount_percent = percent if code else 0
        self._touch(now)

    def reprice(self, pricing: PricingService, shipping: ShippingCalculator) -> None:
        """Recompute a draft's totals from the lines, discount and address.

        Only a draft is priced: once the checkout began, the totals are what the customer is
        charged, and no later change of tax rate, shipping rates or discount codes touches them.
        """
        if self.status is not Status.DRAFT:
            return
        value = merchandise(self.lines.values(), self.currency)
        discounted = value - discount_on(value, self.discount_percent)
        cost = shipping.cost(
            weight_grams=self.weight_grams,
            destination=self.shipping_address,
            merchandise=discounted,
        )
        self.totals = pricing.totals(
            self.lines.values(),
            currency=self.currency,
            discount_percent=self.discount_percent,
            shipping=cost,
        )

    # -- checkout and the state machine ---------------------------------------------------

    def ensure_placeable(self) -> None:
        """Raise unless the draft can be paid for now."""
        self._ensure_editable()
        if not self.lines:
            raise InvalidValue(
                ErrorCode.EMPTY_ORDER, "an order needs at least one line", field="lines"
            )
        if self.shipping_address is None:
            raise InvalidValue(
                ErrorCode.MISSING_ADDRESS,
                "set a shipping address before placing the order",
                field="shipping_address",
            )

    def begin_checkout(
        self,
        payment_id: str,
        current: Iterable[ProductInfo],
        *,
        pricing: PricingService,
        shipping: ShippingCalculator,
        now: datetime,
    ) -> None:
        """Freeze the draft for payment, re-priced at the products' current prices."""
        self.ensure_placeable()
        current = list(current)
        for info in current:  # check every line before changing any, so a refusal changes nothing
            if info.price.currency != self.currency:
                raise InvalidValue(
                    ErrorCode.CURRENCY_MISMATCH,
                    f"{info.sku} is no longer sold in {self.currency}",
                    field="lines",
                )
        for info in current:
            line = self.lines[info.product_id]
            self.lines[info.product_id] = OrderLine(
                info.product_id, info.sku, info.name, info.price, line.quantity, info.weight_grams
            )
        self.reprice(pricing, shipping)
        self.checkout_payment_id = payment_id
        self._touch(now)

    def complete_checkout(self, *, now: datetime) -> None:
        """The payment was captured: the order is placed."""
        if self.status is not Status.DRAFT or self.checkout_payment_id is None:
            raise InvalidTransition("place", self.status)
        payment_id = self.checkout_payment_id
        self.status = Status.PLACED
        self.placed_at = now
        self.checkout_payment_id = None
        self._touch(now)
        self.record(
            OrderPlaced(
                order_id=self.id,
                customer_id=self.customer_id,
                version=self.version,
                payment_id=payment_id,
                total=self.totals.total.amount,
                currency=self.currency,
                lines=[
                    {
                        "product_id": ln.product_id,
                        "sku": ln.sku,
                        "quantity": ln.quantity.value,
                        "unit_price": ln.unit_price.amount,
                    }
                    for ln in self.lines.values()
                ],
            )
        )

    def abort_checkout(self, *, now: datetime) -> None:
        """The payment failed: the draft is editable again and can be retried."""
        if self.checkout_payment_id is not None:
            self.checkout_payment_id = None
            self._touch(now)

    def confirm(self, *, now: datetime) -> None:
        """Staff accept a placed order."""
        self._advance("confirm", Status.PLACED, Status.CONFIRMED, now)
        self.record(
            OrderConfirmed(order_id=self.id, customer_id=self.customer_id, version=self.version)
        )

    def ship(self, *, tracking_code: str, now: datetime) -> None:
        """Staff hand the parcel to the carrier."""
        self._advance("ship", Status.CONFIRMED, Status.SHIPPED, now)
        self.tracking_code = tracking_code.strip() or None
        assert self.shipping_address is not None
        self.record(
            OrderShipped(
                order_id=self.id,
                customer_id=self.customer_id,
                version=self.version,
                tracking_code=self.tracking_code or "",
                shipping_address=self.shipping_address.as_dict(),
            )
        )

    def deliver(self, *, now: datetime) -> None:
        """The parcel arrived."""
        self._advance("deliver", Status.SHIPPED, Status.DELIVERED, now)
        self.record(
            OrderDelivered(order_id=self.id, customer_id=self.customer_id, version=self.version)
        )

    def cancel(self, *, reason: str, cancelled_by: str, now: datetime) -> Status:
        """Cancel from draft, placed or confirmed; returns the status it was cancelled from."""
        if self.status not in CANCELLABLE:
            raise InvalidTransition("cancel", self.status)
        if self.in_checkout:
            raise CheckoutInProgress()
        cleaned = reason.strip()
        if len(cleaned) > 500:
            raise InvalidValue(
                ErrorCode.INVALID_REASON, "reason is at most 500 characters", field="reason"
            )
        previous = self.status
        self.status = Status.CANCELLED
        self.cancel_reason = cleaned or "no reason given"
        self._touch(now)
        self.record(
            OrderCancelled(
                order_id=self.id,
                customer_id=self.customer_id,
                version=self.version,
                reason=self.cancel_reason,
                previous_status=previous.value,
                cancelled_by=cancelled_by,
                refund_due=previous is not Status.DRAFT,
            )
        )
        return previous

    def _advance(self, action: str, source: Status, target: Status, now: datetime) -> None:
        if self.status is not source:
            raise InvalidTransition(action, self.status)
        self.status = target
        self._touch(now)
