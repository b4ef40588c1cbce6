"""The Order aggregate, its lines, and the pricing and shipping domain services.

State machine::

    draft --place--> placed --confirm--> confirmed --ship--> shipped --deliver--> delivered
      \\               |                    |
       +---------------+--------------------+--cancel--> cancelled

Placing happens in two steps around the payment provider: ``begin_checkout`` (stock reserved,
payment pending; the order is still a draft but frozen) and then ``complete_checkout`` (paid:
placed) or ``abort_checkout`` (declined: back to an editable draft the customer can retry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from mercato.kernel.errors import Conflict, InvalidValue, NotFound, PermissionDenied
from mercato.kernel.events import AggregateRoot
from mercato.kernel.money import Money, round_half_even
from mercato.kernel.values import Address, Quantity
from mercato.orders.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderPlaced,
    OrderShipped,
)

MAX_LINES = 100


class ErrorCode(StrEnum):
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_NOT_DRAFT = "order_not_draft"
    INVALID_TRANSITION = "invalid_transition"
    EMPTY_ORDER = "empty_order"
    MISSING_ADDRESS = "missing_address"
    TOO_MANY_LINES = "too_many_lines"
    LINE_NOT_FOUND = "line_not_found"
    CURRENCY_MISMATCH = "currency_mismatch"
    INVALID_DISCOUNT = "invalid_discount_code"
    CHECKOUT_IN_PROGRESS = "checkout_in_progress"
    CHECKOUT_ABANDONED = "checkout_abandoned"
    ORDER_CONFLICT = "order_conflict"
    NOT_OWNER = "not_order_owner"
    INVALID_REASON = "invalid_reason"


class Status(StrEnum):
    DRAFT = "draft"
    PLACED = "placed"
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


CANCELLABLE = frozenset({Status.DRAFT, Status.PLACED, Status.CONFIRMED})


class OrderNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__(ErrorCode.ORDER_NOT_FOUND, "no such order", order_id=order_id)


class OrderNotDraft(Conflict):
    def __init__(self, status: Status) -> None:
        super().__init__(
            ErrorCode.ORDER_NOT_DRAFT,
            f"only draft orders can be changed; this one is {status}",
            order_status=status.value,
        )


class InvalidTransition(Conflict):
    def __init__(self, action: str, status: Status) -> None:
        super().__init__(
            ErrorCode.INVALID_TRANSITION,
            f"cannot {action} an order that is {status}",
            order_status=status.value,
            action=action,
        )


class CheckoutInProgress(Conflict):
    retry_after = 1  # the checkout settles within seconds, or the reconciler settles it

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.CHECKOUT_IN_PROGRESS, "the order is being paid for; try again shortly"
        )


class CheckoutAbandoned(Conflict):
    """The card was charged after the checkout had been given up as stuck; it is refunded."""

    retry_after = 1  # the draft is open again: the same request may place it now

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.CHECKOUT_ABANDONED,
            "the payment arrived after the checkout had been given up; the charge is being "
            "refunded and the order is a draft again: place it again",
        )


class OrderConflict(Conflict):
    def __init__(self, order_id: str, *, current_version: int) -> None:
        super().__init__(
            ErrorCode.ORDER_CONFLICT,
            "the order was changed concurrently; reload it and retry",
            order_id=order_id,
            current_version=current_version,
        )


class NotOwner(PermissionDenied):
    def __init__(self) -> None:
        super().__init__(ErrorCode.NOT_OWNER, "only the customer who owns the order can do this")


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One product on an order, with the price and weight it was priced at."""

    product_id: str
    sku: str
    name: str
    unit_price: Money
    quantity: Quantity
    weight_grams: int

    @property
    def total(self) -> Money:
        """Unit price times quantity."""
        return self.unit_price * self.quantity.value


@dataclass(frozen=True, slots=True)
class Totals:
    """What the order costs, each part in the order's currency."""

    subtotal: Money
    discount: Money
    shipping: Money
    tax: Money
    total: Money

    @classmethod
    def zero(cls, currency: str) -> Totals:
        """All parts zero."""
        z = Money.zero(currency)
        return cls(z, z, z, z, z)


class PricingService:
    """Subtotal, percentage discount and tax.

    discount = subtotal x percent / 100; tax = (subtotal - discount + shipping) x rate, with the
    rate in basis points (1900 = 19 %); both rounded half to even to the minor unit (the one
    rounding rule, :func:`mercato.kernel.money.round_half_even`). Prices are net of tax.
    """

    def __init__(self, *, tax_rate_bp: int, discount_codes: Mapping[str, int]) -> None:
        if not 0 <= tax_rate_bp <= 10_000:
            raise ValueError("tax rate must be 0-10000 basis points")
        for code, percent in discount_codes.items():
            if not 0 <= percent <= 100:
                raise ValueError(f"discount {code}: percent must be 0-100")
        self.tax_rate_bp = tax_rate_bp
        self._codes = {code.upper(): percent for code, percent in discount_codes.items()}

    def discount_percent(self, code: str) -> int:
        """The percentage a discount code gives; InvalidValue for unknown codes."""
        percent = self._codes.get(code.strip().upper())
        if percent is None:
            raise InvalidValue(
                ErrorCode.INVALID_DISCOUNT, "unknown discount code", field="discount_code"
            )
        return percent

    def totals(
        self, lines: Iterable[OrderLine], *, currency: str, discount_percent: int, shipping: Money
    ) -> Totals:
        """Price the lines."""
        subtotal = Money.zero(currency)
        for line in lines:
            subtotal = subtotal + line.total
        discount = Money(round_half_even(subtotal.amount * discount_percent, 100), currency)
        taxable = subtotal - discount + shipping
        tax = taxable.percent(self.tax_rate_bp)
        return Totals(subtotal, discount, shipping, tax, taxable + tax)


@dataclass(frozen=True, slots=True)
class ShippingRates:
    """Per-zone shipping prices in minor units: a base fee plus a fee per started kilogram."""

    home_country: str
    domestic_base: int
    domestic_per_kg: int
    international_base: int
    international_per_kg: int
    free_from: int = 0


class ShippingCalculator:
    """Shipping cost by zone (domestic when the destination is the shop's country) and weight.

    cost = base + per_kg x ceil(weight_kg); free when the discounted merchandise value reaches
    ``free_from`` (0 disables that). Without a shipping address the cost is not yet known and
    counts as zero.
    """

    def __init__(self, rates: ShippingRates) -> None:
        self.rates = rates

    def cost(self, *, weight_grams: int, destination: Address | None, merchandise: Money) -> Money:
        """The shipping price of a parcel."""
        currency = merchandise.currency
        if destination is None:
            return Money.zero(currency)
        if self.rates.free_from and merchandise.amount >= self.rates.free_from:
            return Money.zero(currency)
        started_kg = -(-weight_grams // 1000)
        if destination.country == self.rates.home_country:
            base, per_kg = self.rates.domestic_base, self.rates.domestic_per_kg
        else:
            base, per_kg = self.rates.international_base, self.rates.international_per_kg
        return Money(base + per_kg * started_kg, currency)


@dataclass(frozen=True, slots=True)
class ProductInfo:
    """What an order needs to know about a product to price a line."""

    product_id: str
    sku: str
    name: str
    price: Money
    weight_grams: int


@dataclass(eq=False)
class Order(AggregateRoot):
    """The Order aggregate root. All changes go through its methods."""

    id: str
    customer_id: str
    currency: str
    status: Status
    created_at: datetime
    updated_at: datetime
    lines: dict[str, OrderLine] = field(default_factory=dict)
    shipping_address: Address | None = None
    billing_address: Address | None = None
    discount_code: str | None = None
    discount_percent: int = 0
    totals: Totals | None = None
    placed_at: datetime | None = None
    checkout_payment_id: str | None = None
    cancel_reason: str | None = None
    tracking_code: str | None = None
    version: int = 1
    lines_changed: bool = field(default=False, compare=False)

    @classmethod
    def create(cls, *, id: str, customer_id: str, currency: str, now: datetime) -> Order:
        """An empty draft."""
        order = cls(id, customer_id, currency, Status.DRAFT, now, now)
        order.totals = Totals.zero(currency)
        return order

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
        self.lines_changed = True
        self._touch(now)

    def set_quantity(self, product_id: str, quantity: Quantity, *, now: datetime) -> None:
        """Replace the quantity of a line."""
        self._ensure_editable()
        line = self._line(product_id)
        self.lines[product_id] = OrderLine(
            line.product_id, line.sku, line.name, line.unit_price, quantity, line.weight_grams
        )
        self.lines_changed = True
        self._touch(now)

    def remove_line(self, product_id: str, *, now: datetime) -> None:
        """Take a product off the order."""
        self._ensure_editable()
        self._line(product_id)
        del self.lines[product_id]
        self.lines_changed = True
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
        merchandise = Money.zero(self.currency)
        for line in self.lines.values():
            merchandise = merchandise + line.total
        discounted = merchandise - Money(
            round_half_even(merchandise.amount * self.discount_percent, 100), self.currency
        )
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
            fresh = OrderLine(
                info.product_id, info.sku, info.name, info.price, line.quantity, info.weight_grams
            )
            if fresh != line:  # rewrite the stored lines only when a price or name moved
                self.lines[info.product_id] = fresh
                self.lines_changed = True
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
        assert self.totals is not None
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
