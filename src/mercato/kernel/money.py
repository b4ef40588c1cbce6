"""Money: integer minor units plus an ISO 4217 currency. Never floats.

Rounding rule (the only one in mercato): amounts derived by a percentage — tax and discounts —
are computed exactly with integers and rounded to the nearest minor unit, ties to even
("banker's rounding"), which keeps totals unbiased over many orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Self

from mercato.kernel.errors import InvalidValue


class MoneyError(StrEnum):
    INVALID_CURRENCY = "invalid_currency"
    CURRENCY_MISMATCH = "currency_mismatch"
    NEGATIVE_AMOUNT = "negative_amount"
    AMOUNT_TOO_LARGE = "amount_too_large"


# Currencies mercato accepts, with their number of minor-unit digits (ISO 4217).
_MINOR_DIGITS: dict[str, int] = {
    "EUR": 2,
    "USD": 2,
    "GBP": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "JPY": 0,
    "KRW": 0,
    "BRL": 2,
    "MXN": 2,
    "INR": 2,
    "CNY": 2,
    "HKD": 2,
    "SGD": 2,
    "ZAR": 2,
    "HUF": 2,
    "RON": 2,
    "TRY": 2,
}
CURRENCIES = tuple(sorted(_MINOR_DIGITS))
"""The ISO 4217 codes mercato accepts (the OpenAPI document's enum)."""

# Far above any real order, far below where int64 columns overflow after multiplication.
MAX_AMOUNT = 10**13


class Currency:
    """Validation helpers for ISO 4217 codes."""

    @staticmethod
    def validate(code: str, *, field: str = "currency") -> str:
        """Return the code if mercato knows it, else raise InvalidValue."""
        if code not in _MINOR_DIGITS:
            raise InvalidValue(
                MoneyError.INVALID_CURRENCY,
                f"'{code[:8]}' is not a supported ISO 4217 currency code",
                field=field,
            )
        return code

    @staticmethod
    def minor_digits(code: str) -> int:
        """Number of digits after the decimal point for the currency."""
        return _MINOR_DIGITS[code]

    @staticmethod
    def known() -> tuple[str, ...]:
        """All supported currency codes."""
        return tuple(sorted(_MINOR_DIGITS))


def round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, ties to even."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of a currency; immutable, compared by value."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("Money.amount must be an int of minor units")
        Currency.validate(self.currency)
        if abs(self.amount) > MAX_AMOUNT:
            raise InvalidValue(MoneyError.AMOUNT_TOO_LARGE, "amount is too large", field="amount")

    @classmethod
    def of(cls, amount: int, currency: str) -> Self:
        """A non-negative amount; negative money is refused where the domain forbids it."""
        if amount < 0:
            raise InvalidValue(
                MoneyError.NEGATIVE_AMOUNT, "amount cannot be negative", field="amount"
            )
        return cls(amount, currency)

    @classmethod
    def zero(cls, currency: str) -> Self:
        """Nothing, in the given currency."""
        return cls(0, currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidValue(
                MoneyError.CURRENCY_MISMATCH,
                f"cannot combine {self.currency} with {other.currency}",
                field="currency",
            )

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            return NotImplemented
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount >= other.amount

    def percent(self, basis_points: int) -> Money:
        """This amount times basis_points / 10,000, rounded half to even."""
        return Money(round_half_even(self.amount * basis_points, 10_000), self.currency)

    def __str__(self) -> str:
        digits = Currency.minor_digits(self.currency)
        if digits == 0:
            return f"{self.amount} {self.currency}"
        sign = "-" if self.amount < 0 else ""
        whole, frac = divmod(abs(self.amount), 10**digits)
        return f"{sign}{whole}.{frac:0{digits}d} {self.currency}"
