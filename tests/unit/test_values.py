"""Quantity, Email and Address."""

from __future__ import annotations

import dataclasses

import pytest

from mercato.kernel.errors import InvalidValue
from mercato.kernel.values import (
    MAX_QUANTITY,
    Address,
    Email,
    Quantity,
    check_text,
    forbidden_character,
)

# -- Quantity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 2, MAX_QUANTITY])
def test_quantities_from_one_to_the_maximum_are_accepted(value: int) -> None:
    assert Quantity(value).value == value
    assert int(Quantity(value)) == value


@pytest.mark.parametrize("value", [0, -1, MAX_QUANTITY + 1])
def test_quantities_outside_one_to_the_maximum_are_refused(value: int) -> None:
    with pytest.raises(InvalidValue) as exc:
        Quantity(value)
    assert exc.value.code == "invalid_quantity"
    assert exc.value.field == "quantity"


@pytest.mark.parametrize("value", [True, False, 1.0, 2.5, "3", None])
def test_quantities_that_are_not_whole_numbers_are_refused(value: object) -> None:
    with pytest.raises(InvalidValue) as exc:
        Quantity(value)  # type: ignore[arg-type]
    assert exc.value.code == "invalid_quantity"


def test_adding_quantities_adds_the_units() -> None:
    assert Quantity(2) + Quantity(3) == Quantity(5)


def test_adding_quantities_beyond_the_maximum_is_refused() -> None:
    with pytest.raises(InvalidValue) as exc:
        Quantity(MAX_QUANTITY) + Quantity(1)
    assert exc.value.code == "invalid_quantity"


# -- Email ------------------------------------------------------------------------------------


def test_emails_are_trimmed_and_lower_cased() -> None:
    assert Email("  Ada.Lovelace@Example.COM ").value == "ada.lovelace@example.com"
    assert str(Email("Ada@Example.com")) == "ada@example.com"


def test_emails_compare_case_insensitively() -> None:
    assert Email("ADA@EXAMPLE.COM") == Email("ada@example.com")
    assert len({Email("Ada@x.org"), Email("ada@X.ORG")}) == 1


@pytest.mark.parametrize(
    "value",
    [
        "a@b.co",
        "first.last+tag@sub.example.org",
        "o'brien@example.ie",
        "x_y-z@my-host.example.travel",
    ],
)
def test_ordinary_emails_are_accepted(value: str) -> None:
    assert Email(value).value == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "plainaddress",
        "@example.com",
        "ada@",
        "ada@example",
        "ada@example.c",
        "ada@@example.com",
        "ada lovelace@example.com",
        "ada@exa mple.com",
        "ada@-example.com",
        "ada@example-.com",
        "ada@example..com",
        "ada@.example.com",
        "ada@example.com.",
        "ada@example.123",
        "ada@exämple.com",
        "ada@example.com\nbcc@evil.com",
    ],
)
def test_malformed_emails_are_refused(value: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        Email(value)
    assert exc.value.code == "invalid_email"
    assert exc.value.field == "email"


@pytest.mark.parametrize("value", [None, 42, b"ada@example.com"])
def test_emails_that_are_not_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidValue) as exc:
        Email(value)  # type: ignore[arg-type]
    assert exc.value.code == "invalid_email"


def test_emails_longer_than_254_characters_are_refused() -> None:
    domain = "@example.com"
    longest = "a" * (254 - len(domain)) + domain
    assert Email(longest).value == longest
    with pytest.raises(InvalidValue) as exc:
        Email("a" + longest)
    assert exc.value.code == "invalid_email"


def test_the_length_limit_applies_after_trimming() -> None:
    domain = "@example.com"
    longest = "a" * (254 - len(domain)) + domain
    assert Email(f"  {longest}  ").value == longest


def test_emails_are_immutable() -> None:
    email = Email("ada@example.com")
    with pytest.raises(dataclasses.FrozenInstanceError):
        email.value = "eve@example.com"  # type: ignore[misc]


# -- Address ----------------------------------------------------------------------------------


def test_an_address_trims_street_and_city_and_upper_cases_the_country() -> None:
    address = Address(street="  Unter den Linden 1 ", city=" Berlin ", country=" de ")
    assert (address.street, address.city, address.country) == ("Unter den Linden 1", "Berlin", "DE")


def test_an_address_keeps_its_optional_parts() -> None:
    address = Address(
        "Main St 1", "Springfield", "US", postal_code="12345", region="IL", name="Ada"
    )
    assert address.as_dict() == {
        "name": "Ada",
        "street": "Main St 1",
        "city": "Springfield",
        "postal_code": "12345",
        "region": "IL",
        "country": "US",
    }


@pytest.mark.parametrize(
    ("street", "city", "field"),
    [("", "Berlin", "street"), ("   ", "Berlin", "street"), ("Main St", "", "city")],
)
def test_an_address_without_street_or_city_is_refused(street: str, city: str, field: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        Address(street=street, city=city, country="DE")
    assert exc.value.code == "invalid_address"
    assert exc.value.field == field


@pytest.mark.parametrize("country", ["", "D", "DEU", "1A", "D1", "ÄB", "  ", "D-"])
def test_an_address_whose_country_is_not_an_alpha_2_code_is_refused(country: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        Address(street="Main St 1", city="Berlin", country=country)
    assert exc.value.code == "invalid_address"
    assert exc.value.field == "country"


def test_addresses_are_compared_by_value_after_normalising() -> None:
    assert Address("Main St 1", "Berlin", "de") == Address(" Main St 1", "Berlin ", "DE")


@pytest.mark.parametrize("value", ["ada@example.com\n", "\tada@example.com", "ada@example.com\x85"])
def test_an_email_with_a_control_character_at_either_end_is_refused_not_trimmed(
    value: str,
) -> None:
    with pytest.raises(InvalidValue) as exc:
        Email(value)
    assert exc.value.code == "invalid_email"


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9b", "\ud800"])
def test_free_text_never_holds_control_characters(char: str) -> None:
    for multiline in (False, True):
        assert forbidden_character(f"a{char}b", multiline=multiline) == char
    with pytest.raises(InvalidValue) as exc:
        check_text(f"a{char}", field="street")
    assert (exc.value.code, exc.value.field) == ("invalid_text", "street")


@pytest.mark.parametrize("char", ["\n", "\r", "\t", "\u2028", "\u2029"])
def test_line_breaks_and_tabs_only_in_multi_line_text(char: str) -> None:
    assert forbidden_character(f"a{char}b") == char
    assert forbidden_character(f"a{char}b", multiline=True) is None


def test_letters_of_any_script_and_emoji_are_fine() -> None:
    assert forbidden_character("Zoë 東京 شاي 🛒 \u200d") is None
