"""The pricing service (discount and tax) and the shipping calculator."""

from __future__ import annotations

import dataclasses

import pytest

from mercato.kernel.errors import InvalidValue
from mercato.kernel.money import Money
from mercato.kernel.values import Quantity
from mercato.orders.domain import OrderLine, PricingService, ShippingCalculator, Totals
from tests.unit.builders import ABROAD, HOME, RATES

NO_SHIPPING = Money(0, "EUR")


def line(n: int, *, price: int, quantity: int, currency: str = "EUR") -> OrderLine:
    return OrderLine(f"p{n}", f"S{n}", f"P{n}", Money(price, currency), Quantity(quantity), 100)


def eur(amount: int) -> Money:
    return Money(amount, "EUR")


# -- PricingService ---------------------------------------------------------------------------


def test_totals_follow_the_documented_formula() -> None:
    service = PricingService(tax_rate_bp=1900, discount_codes={})
    lines = [line(1, price=1999, quantity=2), line(2, price=500, quantity=1)]
    totals = service.totals(lines, currency="EUR", discount_percent=10, shipping=eur(490))
    # subtotal 4498; discount 449.8 -> 450; tax 19 % of 4538 = 862.22 -> 862; total 5400
    assert totals == Totals(eur(4498), eur(450), eur(490), eur(862), eur(5400))


def test_totals_of_no_lines_are_just_shipping_and_its_tax() -> None:
    service = PricingService(tax_rate_bp=2000, discount_codes={})
    totals = service.totals([], currency="EUR", discount_percent=0, shipping=eur(500))
    assert totals == Totals(eur(0), eur(0), eur(500), eur(100), eur(600))


@pytest.mark.parametrize(
    ("subtotal", "percent", "discount"),
    [(25, 10, 2), (35, 10, 4), (15, 10, 2), (5, 10, 0), (1, 50, 0), (3, 50, 2), (999, 100, 999)],
)
def test_the_discount_rounds_half_to_even(subtotal: int, percent: int, discount: int) -> None:
    service = PricingService(tax_rate_bp=0, discount_codes={})
    totals = service.totals(
        [line(1, price=subtotal, quantity=1)],
        currency="EUR",
        discount_percent=percent,
        shipping=NO_SHIPPING,
    )
    assert totals.discount == eur(discount)
    assert totals.total == eur(subtotal - discount)


@pytest.mark.parametrize(
    ("taxable", "tax"),
    [(50, 10), (150, 28), (250, 48), (100, 19), (1, 0), (3, 1)],
)
def test_tax_rounds_half_to_even(taxable: int, tax: int) -> None:
    # 19 %: 50 -> 9.5 -> 10, 150 -> 28.5 -> 28, 250 -> 47.5 -> 48, 3 -> 0.57 -> 1
    service = PricingService(tax_rate_bp=1900, discount_codes={})
    totals = service.totals(
        [line(1, price=taxable, quantity=1)],
        currency="EUR",
        discount_percent=0,
        shipping=NO_SHIPPING,
    )
    assert totals.tax == eur(tax)
    assert totals.total == eur(taxable + tax)


def test_tax_is_charged_on_shipping_after_the_discount() -> None:
    service = PricingService(tax_rate_bp=1000, discount_codes={})
    totals = service.totals(
        [line(1, price=1000, quantity=1)], currency="EUR", discount_percent=50, shipping=eur(200)
    )
    assert totals == Totals(eur(1000), eur(500), eur(200), eur(70), eur(770))


def test_totals_are_in_the_orders_currency() -> None:
    service = PricingService(tax_rate_bp=1000, discount_codes={})
    totals = service.totals(
        [line(1, price=1000, quantity=3, currency="JPY")],
        currency="JPY",
        discount_percent=0,
        shipping=Money(0, "JPY"),
    )
    assert totals.total == Money(3300, "JPY")


def test_pricing_lines_in_another_currency_is_refused() -> None:
    service = PricingService(tax_rate_bp=1000, discount_codes={})
    with pytest.raises(InvalidValue) as exc:
        service.totals(
            [line(1, price=1000, quantity=1, currency="USD")],
            currency="EUR",
            discount_percent=0,
            shipping=NO_SHIPPING,
        )
    assert exc.value.code == "currency_mismatch"


def test_discount_codes_are_looked_up_case_insensitively_and_trimmed() -> None:
    service = PricingService(tax_rate_bp=1900, discount_codes={"Welcome10": 10, "FREE": 100})
    assert service.discount_percent(" welcome10 ") == 10
    assert service.discount_percent("WELCOME10") == 10
    assert service.discount_percent("free") == 100


@pytest.mark.parametrize("code", ["NOPE", "", "WELCOME1", "WELCOME100"])
def test_an_unknown_discount_code_is_refused(code: str) -> None:
    service = PricingService(tax_rate_bp=1900, discount_codes={"WELCOME10": 10})
    with pytest.raises(InvalidValue) as exc:
        service.discount_percent(code)
    assert exc.value.code == "invalid_discount_code"
    assert exc.value.field == "discount_code"


@pytest.mark.parametrize("tax_rate_bp", [-1, 10_001])
def test_a_tax_rate_outside_zero_to_ten_thousand_basis_points_is_refused(
    tax_rate_bp: int,
) -> None:
    with pytest.raises(ValueError, match="tax rate"):
        PricingService(tax_rate_bp=tax_rate_bp, discount_codes={})


@pytest.mark.parametrize("percent", [-1, 101])
def test_a_discount_percentage_outside_zero_to_one_hundred_is_refused(percent: int) -> None:
    with pytest.raises(ValueError, match="BAD"):
        PricingService(tax_rate_bp=1900, discount_codes={"OK": 10, "BAD": percent})


def test_the_boundary_rates_and_percentages_are_accepted() -> None:
    low = PricingService(tax_rate_bp=0, discount_codes={"NONE": 0})
    high = PricingService(tax_rate_bp=10_000, discount_codes={"ALL": 100})
    assert (low.tax_rate_bp, low.discount_percent("NONE")) == (0, 0)
    assert (high.tax_rate_bp, high.discount_percent("ALL")) == (10_000, 100)


# -- ShippingCalculator -----------------------------------------------------------------------

calculator = ShippingCalculator(RATES)  # DE: 4.90 + 1.00/kg; abroad: 14.90 + 3.50/kg


@pytest.mark.parametrize(
    ("grams", "domestic", "international"),
    [
        (0, 490, 1490),
        (1, 590, 1840),
        (999, 590, 1840),
        (1000, 590, 1840),
        (1001, 690, 2190),
        (2000, 690, 2190),
        (2001, 790, 2540),
    ],
)
def test_shipping_costs_a_base_fee_plus_a_fee_per_started_kilogram(
    grams: int, domestic: int, international: int
) -> None:
    assert calculator.cost(weight_grams=grams, destination=HOME, merchandise=eur(100)) == eur(
        domestic
    )
    assert calculator.cost(weight_grams=grams, destination=ABROAD, merchandise=eur(100)) == eur(
        international
    )


def test_shipping_without_an_address_is_not_yet_known_and_counts_as_zero() -> None:
    cost = calculator.cost(weight_grams=5000, destination=None, merchandise=Money(100, "USD"))
    assert cost == Money(0, "USD")


def test_shipping_is_priced_in_the_merchandise_currency() -> None:
    cost = calculator.cost(weight_grams=500, destination=HOME, merchandise=Money(1, "CHF"))
    assert cost == Money(590, "CHF")


def test_shipping_is_free_from_the_threshold_on() -> None:
    free_from = ShippingCalculator(dataclasses.replace(RATES, free_from=5000))
    assert free_from.cost(weight_grams=800, destination=HOME, merchandise=eur(4999)) == eur(590)
    assert free_from.cost(weight_grams=800, destination=HOME, merchandise=eur(5000)) == eur(0)
    assert free_from.cost(weight_grams=800, destination=ABROAD, merchandise=eur(9000)) == eur(0)


def test_a_zero_free_from_threshold_never_makes_shipping_free() -> None:
    cost = calculator.cost(weight_grams=800, destination=HOME, merchandise=eur(10**12))
    assert cost == eur(590)
