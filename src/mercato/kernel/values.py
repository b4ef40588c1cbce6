"""Value objects shared by every module: Quantity, Email, Address; the rule for free text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from mercato.kernel.errors import InvalidValue


class ValueError_(StrEnum):
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_EMAIL = "invalid_email"
    INVALID_ADDRESS = "invalid_address"
    INVALID_TEXT = "invalid_text"


MAX_QUANTITY = 10_000

# Deliberately modest: one @, a non-empty local part, a dotted domain with a 2+ letter TLD.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
"""What an e-mail address must look like (also the pattern the OpenAPI document states)."""
_EMAIL = re.compile(EMAIL_PATTERN)
COUNTRY_PATTERN = "^[A-Za-z]{2}$"
"""An ISO 3166-1 alpha-2 country code, in either case."""


# Free text never holds C0 or C1 control characters (NUL among them), DEL, or lone surrogates
# (which no database can store); single-line text also no line or paragraph separators.
# Multi-line text (a description) may hold tabs and line breaks.
LINE_FORBIDDEN = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
TEXT_FORBIDDEN = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
"""The characters single-line and multi-line text may not hold besides lone surrogates (which
UTF-8 cannot carry), as bodies of a character class; the OpenAPI document states them too."""
_SURROGATES = r"\ud800-\udfff"
_NOT_IN_LINE = re.compile(f"[{LINE_FORBIDDEN}{_SURROGATES}]")
_NOT_IN_TEXT = re.compile(f"[{TEXT_FORBIDDEN}{_SURROGATES}]")


def forbidden_character(text: str, *, multiline: bool = False) -> str | None:
    """The first character that free text may not hold, or None when it is clean.

    This is mercato's one rule for text from outside: every text field of every request, and
    every domain value built from text, is checked with it.
    """
    found = (_NOT_IN_TEXT if multiline else _NOT_IN_LINE).search(text)
    return None if found is None else found.group()


def describe_character(char: str) -> str:
    """How an error message names a character: ``U+0000``."""
    return f"U+{ord(char):04X}"


def check_text(text: str, *, field: str, multiline: bool = False) -> str:
    """The text unchanged, or InvalidValue naming ``field`` if it holds a control character."""
    bad = forbidden_character(text, multiline=multiline)
    if bad is not None:
        raise InvalidValue(
            ValueError_.INVALID_TEXT,
            f"{field} must not contain control characters (found {describe_character(bad)})",
            field=field,
        )
    return text


@dataclass(frozen=True, slots=True)
class Quantity:
    """A positive whole number of units, at most MAX_QUANTITY per line."""

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise InvalidValue(
                ValueError_.INVALID_QUANTITY, "quantity must be a whole number", field="quantity"
            )
        if not 1 <= self.value <= MAX_QUANTITY:
            raise InvalidValue(
                ValueError_.INVALID_QUANTITY,
                f"quantity must be between 1 and {MAX_QUANTITY}",
                field="quantity",
            )

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.value + other.value)

    def __int__(self) -> int:
        return self.value


@dataclass(frozen=True, slots=True)
class Email:
    """An e-mail address; compared case-insensitively (stored lower-cased)."""

    value: str

    def __post_init__(self) -> None:
        text = self.value if isinstance(self.value, str) else ""
        normalised = text.strip().lower()
        # strip() would quietly drop a trailing line break or other control character
        if len(normalised) > 254 or not _EMAIL.match(normalised) or forbidden_character(text):
            raise InvalidValue(
                ValueError_.INVALID_EMAIL, "not a valid e-mail address", field="email"
            )
        object.__setattr__(self, "value", normalised)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address; street, city and country (ISO 3166 alpha-2) are required."""

    street: str
    city: str
    country: str
    postal_code: str = ""
    region: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        for attr in ("street", "city"):
            value = getattr(self, attr).strip()
            if not value:
                raise InvalidValue(ValueError_.INVALID_ADDRESS, f"{attr} is required", field=attr)
            object.__setattr__(self, attr, value)
        country = self.country.strip().upper()
        if len(country) != 2 or not country.isalpha() or not country.isascii():
            raise InvalidValue(
                ValueError_.INVALID_ADDRESS,
                "country must be an ISO 3166-1 alpha-2 code such as 'DE'",
                field="country",
            )
        object.__setattr__(self, "country", country)

    def as_dict(self) -> dict[str, str]:
        """The address as a plain mapping (for events and storage)."""
        return {
            "name": self.name,
            "street": self.street,
            "city": self.city,
            "postal_code": self.postal_code,
            "region": self.region,
            "country": self.country,
        }
