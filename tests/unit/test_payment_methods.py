"""Paying with a provider's payment method id: its checks, the sandbox's answers, last four."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercato.kernel.errors import InvalidValue
from mercato.kernel.money import Money
from mercato.payments.domain import (
    SUCCESS_CARD,
    ChargeRequest,
    ChargeResult,
    Outcome,
    Payment,
    PaymentMeans,
    check_payment,
    check_payment_method,
)
from mercato.payments.sandbox import SandboxProvider
from tests.unit.builders import T0

EUR_10 = Money(1000, "EUR")
ALLOWED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"


def opened(card_last4: str = "") -> Payment:
    return Payment.open(
        id="pay-1",
        order_id="order-1",
        amount=Money(2380, "EUR"),
        provider="stripe",
        card_last4=card_last4,
        now=T0,
    )


@pytest.mark.parametrize("value", ["pm_card_visa", "pm_1PqRsT2eZvKYlo2C", "card_123", "pm_" * 85])
def test_payment_method_ids_of_letters_digits_and_underscores_are_accepted(value: str) -> None:
    assert check_payment_method(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "pm",  # too short
        "p" * 256,  # too long
        "pm_card visa",
        "pm_card_visa\n",
        " pm_card_visa",
        "pm-card-visa",
        "pm_card_visa'--",
        "pm_ca\u0440d",  # a Cyrillic letter that looks like "p"
        "pm_\uff11",  # a full-width digit
        "pm_card_visa\x00",
        "pm_card[visa]",
        "pm_card_visa&amount=1",
    ],
)
def test_anything_else_is_refused_as_a_payment_method(value: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        check_payment_method(value)
    assert exc.value.field == "payment_method"
    assert exc.value.code == "invalid_payment_method"


@given(st.text(min_size=3, max_size=300))
def test_a_payment_method_is_accepted_only_when_every_character_is_allowed(value: str) -> None:
    fits = len(value) <= 255 and all(c in ALLOWED for c in value)
    try:
        check_payment_method(value)
    except InvalidValue:
        assert not fits
    else:
        assert fits


def test_a_checkout_pays_either_by_card_or_by_payment_method() -> None:
    assert check_payment(card_number="4242 4242 4242 4242", payment_method=None) == (
        SUCCESS_CARD,
        None,
    )
    assert check_payment(card_number=None, payment_method="pm_card_visa") == (
        None,
        "pm_card_visa",
    )


def test_neither_a_card_nor_a_payment_method_is_refused_naming_the_payment_method() -> None:
    with pytest.raises(InvalidValue) as exc:
        check_payment(card_number=None, payment_method=None)
    assert (exc.value.field, exc.value.code) == ("payment_method", "payment_method_required")


def test_a_card_and_a_payment_method_together_are_refused() -> None:
    with pytest.raises(InvalidValue) as exc:
        check_payment(card_number=SUCCESS_CARD, payment_method="pm_card_visa")
    assert (exc.value.field, exc.value.code) == ("card_number", "payment_method_ambiguous")


def test_a_card_number_with_a_payment_method_is_still_luhn_checked() -> None:
    with pytest.raises(InvalidValue) as exc:
        check_payment(card_number="4242424242424241", payment_method=None)
    assert exc.value.field == "card_number"
    with pytest.raises(InvalidValue) as bad:
        check_payment(card_number=None, payment_method="pm card")
    assert bad.value.field == "payment_method"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("pm_card_visa", ChargeResult(Outcome.CAPTURED, card_last4="4242")),
        ("pm_card_mastercard", ChargeResult(Outcome.CAPTURED, card_last4="4444")),
        ("pm_1PqRsT2eZvKYlo2C", ChargeResult(Outcome.CAPTURED)),
        ("pm_card_visa_chargeDeclined", ChargeResult(Outcome.DECLINED, reason="card_declined")),
        (
            "pm_card_visa_chargeDeclinedInsufficientFunds",
            ChargeResult(Outcome.DECLINED, reason="card_declined"),
        ),
        (
            "pm_card_chargeDeclinedExpiredCard",
            ChargeResult(Outcome.DECLINED, reason="card_declined"),
        ),
        (
            "pm_card_chargeDeclinedProcessingError",
            ChargeResult(Outcome.ERROR, reason="processing_error"),
        ),
    ],
)
async def test_the_sandbox_answers_stripes_test_payment_methods_like_stripe(
    method: str, expected: ChargeResult
) -> None:
    result = await SandboxProvider().charge(
        ChargeRequest(f"k-{method}", EUR_10, PaymentMeans(payment_method=method))
    )
    if expected.outcome is Outcome.CAPTURED:
        assert result.reference.startswith("sbx_")
        expected = ChargeResult(
            Outcome.CAPTURED, reference=result.reference, card_last4=expected.card_last4
        )
    assert result == expected


def test_a_settled_payment_records_the_last_four_digits_the_provider_reported() -> None:
    payment = opened()
    payment.settle(ChargeResult(Outcome.CAPTURED, reference="pi_1", card_last4="4242"), now=T0)
    assert payment.card_last4 == "4242"


@pytest.mark.parametrize("reported", ["", "424", "42424", "42a2", "\uff14\uff12\uff14\uff12"])
def test_last_four_digits_that_are_not_four_digits_are_ignored(reported: str) -> None:
    payment = opened()
    payment.settle(ChargeResult(Outcome.CAPTURED, reference="pi_1", card_last4=reported), now=T0)
    assert payment.card_last4 == ""


def test_the_last_four_digits_known_at_opening_are_kept() -> None:
    payment = opened("4242")
    payment.settle(ChargeResult(Outcome.DECLINED, reason="card_declined"), now=T0)
    assert payment.card_last4 == "4242"
