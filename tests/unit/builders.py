"""Small builders for order tests: products, addresses, pricing and a clock that ticks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from mercato.kernel.money import Money
from mercato.kernel.values import Address
from mercato.orders.domain import (
    Order,
    PricingService,
    ProductInfo,
    ShippingCalculator,
    ShippingRates,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

HOME = Address(street="Unter den Linden 1", city="Berlin", country="DE", postal_code="10117")
ABROAD = Address(street="Rue de Rivoli 1", city="Paris", country="FR", postal_code="75001")

RATES = ShippingRates(
    home_country="DE",
    domestic_base=490,
    domestic_per_kg=100,
    international_base=1490,
    international_per_kg=350,
)


def ticks() -> Iterator[datetime]:
    """Successive instants one second apart, starting just after T0."""
    return (T0 + timedelta(seconds=n) for n in itertools.count(1))


def product(
    n: int = 1, *, price: int = 1000, currency: str = "EUR", weight_grams: int = 250
) -> ProductInfo:
    return ProductInfo(
        product_id=f"prod-{n}",
        sku=f"SKU-{n}",
        name=f"Product {n}",
        price=Money(price, currency),
        weight_grams=weight_grams,
    )


def pricing(*, tax_rate_bp: int = 1900) -> PricingService:
    return PricingService(tax_rate_bp=tax_rate_bp, discount_codes={"WELCOME10": 10, "HALF": 50})


def shipping(rates: ShippingRates = RATES) -> ShippingCalculator:
    return ShippingCalculator(rates)


def draft(*, currency: str = "EUR", order_id: str = "order-1") -> Order:
    return Order.create(id=order_id, customer_id="cust-1", currency=currency, now=T0)
