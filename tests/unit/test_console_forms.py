"""The console's form parsing, redirects and CSRF tokens: pure functions, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercato.console.session import Keys, same
from mercato.console.views import amount_text, parse_int, parse_money
from mercato.console.web import _safe_next
from mercato.kernel.money import Money


@given(st.integers(min_value=0, max_value=10**12))
def test_a_price_shown_in_a_form_reads_back_as_the_same_amount(amount: int) -> None:
    errors: dict[str, str] = {}
    shown = amount_text(Money.of(amount, "EUR"))
    assert parse_money(shown, currency="EUR", field="price", errors=errors) == amount
    assert errors == {}


@pytest.mark.parametrize(
    "text",
    ["", "-1", "1e3", "1.234", "\uff11\uff12", "1,50", "0x10", " . ", "1234567890123456.00", "²"],
)
def test_malformed_prices_are_refused_in_plain_words(text: str) -> None:
    errors: dict[str, str] = {}
    parse_money(text, currency="EUR", field="price", errors=errors)
    assert errors["price"].startswith("Price must be a positive amount like 12.50")


def test_a_currency_without_minor_units_takes_whole_amounts_only() -> None:
    errors: dict[str, str] = {}
    assert parse_money("500", currency="JPY", field="price", errors=errors) == 500
    parse_money("5.5", currency="JPY", field="price", errors=errors)
    assert "price" in errors


@pytest.mark.parametrize("text", ["", "1.5", "²", "١٢", "9" * 13, "--1"])
def test_whole_numbers_refuse_anything_else(text: str) -> None:
    errors: dict[str, str] = {}
    parse_int(text, field="delta", label="Change", errors=errors)
    assert errors == {"delta": "Change must be a whole number."}


def test_whole_numbers_take_signs() -> None:
    errors: dict[str, str] = {}
    assert parse_int("-7", field="d", label="D", errors=errors) == -7
    assert parse_int("+7", field="d", label="D", errors=errors) == 7
    assert errors == {}


@pytest.mark.parametrize(
    "target",
    [None, "", "/", "//evil.example", "https://evil.example/console/", "/console//evil", "/x"],
)
def test_sign_in_only_returns_to_console_paths(target: str | None) -> None:
    assert _safe_next(target) == "/console/"


def test_sign_in_returns_to_the_console_page_asked_for() -> None:
    assert _safe_next("/console/orders?status=placed") == "/console/orders?status=placed"


def test_csrf_tokens_belong_to_one_session_and_one_secret() -> None:
    keys = Keys("a" * 40)
    token = keys.csrf_for("session-1")
    assert same(token, keys.csrf_for("session-1"))
    assert not same(token, keys.csrf_for("session-2"))
    assert not same(token, Keys("b" * 40).csrf_for("session-1"))
    assert not same("", "")
    assert not same(None, token)
