"""Order lines, totals, and the pricing and shipping domain services."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mercato.kernel.errors import InvalidValue
from mercato.kernel.money import Money, round_half_even
from mercato.kernel.values import Address, Quantity
from mercato.orders.domain.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class ProductInfo:
    """What an order needs to know about a product to price a line."""

    product_id: str
    sku: str
    name: str
    price: Money
    weight_grams: int


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


def merchandise(lines: Iterable[OrderLine], currency: str) -> Money:
    """The lines' value before discount, shipping and tax."""
    value = Money.zero(currency)
    for line in lines:
        value = value + line.total
    return value


def discount_on(value: Money, percent: int) -> Money:
    """The discount a percentage gives on a value: the one place a discount is rounded (half to
    even, to the minor unit)."""
    return Money(round_half_even(value.amount * percent, 100), value.currency)


class PricingService:
    """Subtotal, percentage discount and tax.

    discount = subtotal x percent / 100 (:func:`discount_on`); tax = (subtotal - discount +
    shipping) x rate, with the rate in basis points (1900 = 19 %); both rounded half to even to
    the minor unit (the one rounding rule, :func:`mercato.kernel.money.round_half_even`). Prices
    are net of tax.
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
        subtotal = merchandise(lines, currency)
        discount = discount_on(subtotal, discount_percent)
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
