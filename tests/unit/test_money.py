"""Money and the one rounding rule."""

from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mercato.kernel.errors import InvalidValue
from mercato.kernel.money import MAX_AMOUNT, Currency, Money, round_half_even


def eur(amount: int) -> Money:
    return Money(amount, "EUR")


# -- arithmetic -------------------------------------------------------------------------------


def test_adding_money_in_the_same_currency_adds_the_minor_units() -> None:
    assert eur(1999) + eur(1) == Money(2000, "EUR")


def test_subtracting_money_may_go_below_zero() -> None:
    assert eur(100) - eur(250) == Money(-150, "EUR")


def test_multiplying_money_by_an_int_works_from_either_side() -> None:
    assert eur(1999) * 3 == eur(5997)
    assert 3 * eur(1999) == eur(5997)


@pytest.mark.parametrize("factor", [1.5, True, "2"])
def test_multiplying_money_by_anything_but_an_int_is_refused(factor: object) -> None:
    with pytest.raises(TypeError):
        eur(100) * factor  # type: ignore[operator]


def test_adding_money_in_different_currencies_is_refused() -> None:
    with pytest.raises(InvalidValue) as exc:
        eur(100) + Money(100, "USD")
    assert exc.value.code == "currency_mismatch"
    assert exc.value.field == "currency"


def test_subtracting_money_in_different_currencies_is_refused() -> None:
    with pytest.raises(InvalidValue) as exc:
        eur(100) - Money(100, "GBP")
    assert exc.value.code == "currency_mismatch"


def test_comparing_money_orders_by_amount() -> None:
    assert eur(1) < eur(2)
    assert eur(2) <= eur(2)
    assert eur(3) > eur(2)
    assert eur(2) >= eur(2)
    assert not eur(2) < eur(2)
    assert not eur(1) > eur(2)


@pytest.mark.parametrize("compare", ["__lt__", "__le__", "__gt__", "__ge__"])
def test_comparing_money_in_different_currencies_is_refused(compare: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        getattr(eur(1), compare)(Money(1, "USD"))
    assert exc.value.code == "currency_mismatch"


def test_money_in_different_currencies_is_unequal_rather_than_an_error() -> None:
    assert eur(100) != Money(100, "USD")


def test_zero_is_zero_in_the_given_currency() -> None:
    assert Money.zero("JPY") == Money(0, "JPY")


# -- construction -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["XXX", "eur", "EURO", ""])
def test_unknown_currencies_are_refused(code: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        Money(1, code)
    assert exc.value.code == "invalid_currency"
    assert exc.value.field == "currency"


def test_currency_validate_returns_a_known_code_and_names_the_field_it_checks() -> None:
    assert Currency.validate("CHF") == "CHF"
    with pytest.raises(InvalidValue) as exc:
        Currency.validate("ABC", field="price_currency")
    assert exc.value.field == "price_currency"


def test_known_currencies_are_sorted_and_carry_their_minor_digits() -> None:
    known = Currency.known()
    assert list(known) == sorted(known)
    assert {"EUR", "USD", "JPY"} <= set(known)
    assert Currency.minor_digits("EUR") == 2
    assert Currency.minor_digits("JPY") == 0


def test_money_of_refuses_a_negative_amount() -> None:
    with pytest.raises(InvalidValue) as exc:
        Money.of(-1, "EUR")
    assert exc.value.code == "negative_amount"
    assert exc.value.field == "amount"


def test_money_of_accepts_zero_and_positive_amounts() -> None:
    assert Money.of(0, "EUR") == eur(0)
    assert Money.of(4200, "EUR") == eur(4200)


@pytest.mark.parametrize("amount", [1.0, True, "100", None])
def test_money_amount_must_be_an_int_of_minor_units(amount: object) -> None:
    with pytest.raises(TypeError):
        Money(amount, "EUR")  # type: ignore[arg-type]


def test_amounts_beyond_the_maximum_are_refused_in_both_directions() -> None:
    assert Money(MAX_AMOUNT, "EUR").amount == MAX_AMOUNT
    assert Money(-MAX_AMOUNT, "EUR").amount == -MAX_AMOUNT
    for amount in (MAX_AMOUNT + 1, -MAX_AMOUNT - 1):
        with pytest.raises(InvalidValue) as exc:
            Money(amount, "EUR")
        assert exc.value.code == "amount_too_large"


def test_arithmetic_that_overflows_the_maximum_is_refused() -> None:
    with pytest.raises(InvalidValue) as exc:
        Money(MAX_AMOUNT, "EUR") * 2
    assert exc.value.code == "amount_too_large"


# -- value semantics --------------------------------------------------------------------------


def test_money_is_immutable() -> None:
    money = eur(100)
    with pytest.raises(dataclasses.FrozenInstanceError):
        money.amount = 200  # type: ignore[misc]
    assert money.amount == 100


def test_money_is_compared_and_hashed_by_value() -> None:
    assert eur(100) == eur(100)
    assert eur(100) is not eur(100)
    assert len({eur(100), eur(100), eur(101)}) == 2


def test_arithmetic_returns_new_money_and_leaves_operands_alone() -> None:
    a, b = eur(100), eur(50)
    total = a + b
    assert (a, b, total) == (eur(100), eur(50), eur(150))


# -- percent ----------------------------------------------------------------------------------


def test_percent_takes_basis_points() -> None:
    assert eur(10_000).percent(1900) == eur(1900)
    assert eur(1999).percent(10_000) == eur(1999)
    assert eur(1999).percent(0) == eur(0)


@pytest.mark.parametrize(
    ("amount", "basis_points", "expected"),
    [
        (5, 1000, 0),  # 0.5 -> 0 (even)
        (15, 1000, 2),  # 1.5 -> 2 (even)
        (25, 1000, 2),  # 2.5 -> 2 (even)
        (35, 1000, 4),  # 3.5 -> 4 (even)
        (-25, 1000, -2),  # -2.5 -> -2 (even)
        (-15, 1000, -2),  # -1.5 -> -2 (even)
        (1001, 1900, 190),  # 190.19 -> 190
        (1003, 1900, 191),  # 190.57 -> 191
    ],
)
def test_percent_rounds_half_to_even(amount: int, basis_points: int, expected: int) -> None:
    assert eur(amount).percent(basis_points) == eur(expected)


def test_percent_keeps_the_currency() -> None:
    assert Money(1000, "JPY").percent(1000) == Money(100, "JPY")


# -- formatting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(123456, "EUR"), "1234.56 EUR"),
        (Money(5, "EUR"), "0.05 EUR"),
        (Money(100, "USD"), "1.00 USD"),
        (Money(0, "GBP"), "0.00 GBP"),
        (Money(-5, "EUR"), "-0.05 EUR"),
        (Money(-1234, "EUR"), "-12.34 EUR"),
        (Money(1000, "JPY"), "1000 JPY"),
        (Money(-7, "KRW"), "-7 KRW"),
    ],
)
def test_money_prints_with_the_currencys_minor_digits(money: Money, text: str) -> None:
    assert str(money) == text


# -- round_half_even --------------------------------------------------------------------------


def test_round_half_even_refuses_a_non_positive_denominator() -> None:
    for denominator in (0, -1):
        with pytest.raises(ValueError, match="denominator"):
            round_half_even(1, denominator)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(1, 2, 0), (3, 2, 2), (5, 2, 2), (-1, 2, 0), (-3, 2, -2), (7, 3, 2), (8, 3, 3), (-8, 3, -3)],
)
def test_round_half_even_on_known_cases(numerator: int, denominator: int, expected: int) -> None:
    assert round_half_even(numerator, denominator) == expected


numerators = st.integers(min_value=-(10**18), max_value=10**18)
denominators = st.integers(min_value=1, max_value=10**9)


@settings(max_examples=300)
@given(numerators, denominators)
@example(5, 10)
@example(15, 10)
@example(-5, 10)
@example(-15, 10)
def test_round_half_even_matches_fractions(numerator: int, denominator: int) -> None:
    # round() on a Fraction rounds half to even, exactly.
    assert round_half_even(numerator, denominator) == round(Fraction(numerator, denominator))


@settings(max_examples=300)
@given(numerators, denominators)
@example(25, 10)
@example(-25, 10)
def test_round_half_even_matches_decimal_round_half_even(numerator: int, denominator: int) -> None:
    with localcontext() as ctx:
        ctx.prec = 60  # ample for exact ties: 18-digit numerators, 9-digit denominators
        quotient = Decimal(numerator) / Decimal(denominator)
        expected = int(quotient.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    assert round_half_even(numerator, denominator) == expected


@given(numerators, denominators)
def test_round_half_even_is_never_more_than_half_a_unit_off(
    numerator: int, denominator: int
) -> None:
    rounded = round_half_even(numerator, denominator)
    assert abs(Fraction(numerator, denominator) - rounded) <= Fraction(1, 2)
