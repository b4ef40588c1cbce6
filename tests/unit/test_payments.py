"""Card checks, the Payment record and the sandbox provider."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercato.kernel.errors import Conflict, InvalidValue
from mercato.kernel.money import Money
from mercato.payments.domain import (
    DECLINED_CARD,
    ERROR_CARD,
    SUCCESS_CARD,
    ChargeRequest,
    ChargeResult,
    Outcome,
    Payment,
    PaymentMeans,
    Status,
    check_card,
)
from mercato.payments.events import PaymentCaptured, PaymentFailed, PaymentRefunded
from mercato.payments.sandbox import SandboxProvider
from tests.unit.builders import T0

LATER = T0 + timedelta(seconds=3)


def opened(payment_id: str = "pay-1") -> Payment:
    return Payment.open(
        id=payment_id,
        order_id="order-1",
        amount=Money(2380, "EUR"),
        provider="sandbox",
        card_last4="4242",
        now=T0,
    )


def captured() -> Payment:
    payment = opened()
    payment.settle(ChargeResult(Outcome.CAPTURED, reference="ref-1"), now=LATER)
    payment.pull_events()
    return payment


# -- check_card -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "digits"),
    [
        ("4242424242424242", "4242424242424242"),
        ("4242 4242 4242 4242", "4242424242424242"),
        ("4242-4242-4242-4242", "4242424242424242"),
        (" 4000 0000-0000 0002 ", "4000000000000002"),
        ("378282246310005", "378282246310005"),  # 15-digit Amex test number
        ("000000000000", "000000000000"),  # 12 digits, Luhn sum 0
        ("0" * 18 + "0", "0" * 19),  # 19 digits
    ],
)
def test_valid_card_numbers_are_returned_as_digits_only(number: str, digits: str) -> None:
    assert check_card(number) == digits


@pytest.mark.parametrize(
    "number",
    [
        "4242424242424241",  # Luhn check fails
        "4242424242424243",
        "4000000000000003",
        "42424242424",  # 11 digits
        "0" * 20,  # 20 digits
        "",
        "    ",
        "4242a42424242424",
        "4242_4242_4242_4242",
        "4242.4242.4242.4242",
        "+4242424242424242",
        "424242424242424²",  # isdigit() is true for superscripts
        "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢",  # Arabic-Indic digits spelling 4242...
    ],
)
def test_invalid_card_numbers_are_refused(number: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        check_card(number)
    assert exc.value.code == "invalid_card"
    assert exc.value.field == "card_number"


def _luhn_check_digit(body: str) -> str:
    total = 0
    for i, char in enumerate(reversed(body)):
        d = int(char)
        if i % 2 == 0:  # doubled: these are odd positions once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str(-total % 10)


@given(st.text(alphabet="0123456789", min_size=11, max_size=18))
def test_every_number_with_a_correct_check_digit_is_accepted_and_no_other(body: str) -> None:
    good = _luhn_check_digit(body)
    assert check_card(body + good) == body + good
    for digit in "0123456789":
        if digit != good:
            with pytest.raises(InvalidValue):
                check_card(body + digit)


@given(st.text(alphabet=st.sampled_from("0123456789 -x²٤"), max_size=25) | st.text(max_size=25))
def test_any_text_is_accepted_exactly_when_it_is_12_to_19_ascii_digits_passing_luhn(
    text: str,
) -> None:
    digits = text.replace(" ", "").replace("-", "")
    valid = (
        re.fullmatch(r"[0-9]{12,19}", digits) is not None
        and _luhn_check_digit(digits[:-1]) == digits[-1]
    )
    if valid:
        assert check_card(text) == digits
    else:
        with pytest.raises(InvalidValue) as exc:
            check_card(text)
        assert exc.value.code == "invalid_card"


# -- Payment ----------------------------------------------------------------------------------


def test_opening_a_payment_makes_it_pending_with_a_key_derived_from_its_id() -> None:
    payment = opened("pay-42")
    assert payment.status is Status.PENDING
    assert payment.idempotency_key == "mercato-charge-pay-42"
    assert payment.refund_key == "mercato-refund-pay-42"
    assert (payment.amount, payment.card_last4, payment.created_at) == (
        Money(2380, "EUR"),
        "4242",
        T0,
    )
    assert payment.pending_events == ()


def test_different_payments_get_different_idempotency_keys() -> None:
    assert opened("pay-1").idempotency_key != opened("pay-2").idempotency_key


def test_settling_a_capture_records_payment_captured() -> None:
    payment = opened()
    payment.settle(ChargeResult(Outcome.CAPTURED, reference="sbx_1"), now=LATER)
    assert (payment.status, payment.provider_reference, payment.updated_at) == (
        Status.CAPTURED,
        "sbx_1",
        LATER,
    )
    assert payment.failure_reason == ""
    assert payment.pull_events() == [
        PaymentCaptured(payment_id="pay-1", order_id="order-1", amount=2380, currency="EUR")
    ]


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (ChargeResult(Outcome.DECLINED, reason="card_declined"), "card_declined"),
        (ChargeResult(Outcome.ERROR, reason="processing_error"), "processing_error"),
        (ChargeResult(Outcome.DECLINED), "declined"),
        (ChargeResult(Outcome.ERROR), "error"),
    ],
)
def test_settling_a_decline_or_error_fails_the_payment_with_a_reason(
    result: ChargeResult, reason: str
) -> None:
    payment = opened()
    payment.settle(result, now=LATER)
    assert (payment.status, payment.failure_reason, payment.provider_reference) == (
        Status.FAILED,
        reason,
        "",
    )
    assert payment.pull_events() == [
        PaymentFailed(
            payment_id="pay-1", order_id="order-1", reason=reason, outcome=result.outcome.value
        )
    ]


def test_a_settled_payment_cannot_be_settled_again() -> None:
    payment = captured()
    with pytest.raises(Conflict) as exc:
        payment.settle(ChargeResult(Outcome.DECLINED, reason="late"), now=LATER)
    assert exc.value.code == "invalid_payment_transition"
    assert (payment.status, payment.pending_events) == (Status.CAPTURED, ())


def test_refunding_a_captured_payment_records_payment_refunded() -> None:
    payment = captured()
    later = LATER + timedelta(days=1)
    payment.mark_refunded(now=later)
    assert (payment.status, payment.updated_at) == (Status.REFUNDED, later)
    assert payment.pull_events() == [
        PaymentRefunded(payment_id="pay-1", order_id="order-1", amount=2380, currency="EUR")
    ]


def test_only_a_captured_payment_can_be_refunded() -> None:
    pending = opened()
    failed = opened()
    failed.settle(ChargeResult(Outcome.DECLINED, reason="card_declined"), now=LATER)
    failed.pull_events()
    refunded = captured()
    refunded.mark_refunded(now=LATER)
    refunded.pull_events()
    for payment, status in ((pending, Status.PENDING), (failed, Status.FAILED)):
        with pytest.raises(Conflict) as exc:
            payment.mark_refunded(now=LATER)
        assert exc.value.code == "invalid_payment_transition"
        assert (payment.status, payment.pending_events) == (status, ())
    with pytest.raises(Conflict):
        refunded.mark_refunded(now=LATER)
    assert refunded.status is Status.REFUNDED


# -- SandboxProvider --------------------------------------------------------------------------

EUR_10 = Money(1000, "EUR")


def test_the_sandbox_test_cards_are_the_documented_numbers() -> None:
    assert (SUCCESS_CARD, DECLINED_CARD, ERROR_CARD) == (
        "4242424242424242",
        "4000000000000002",
        "4000000000000119",
    )
    for card in (SUCCESS_CARD, DECLINED_CARD, ERROR_CARD):
        assert check_card(card) == card


@pytest.mark.anyio
async def test_the_sandbox_captures_the_success_card_with_a_reference_from_the_key() -> None:
    sandbox = SandboxProvider()
    result = await sandbox.charge(ChargeRequest("k1", EUR_10, PaymentMeans(SUCCESS_CARD)))
    assert result.outcome is Outcome.CAPTURED
    assert result.reference.startswith("sbx_")
    assert len(result.reference) == len("sbx_") + 24
    assert result.reason == ""
    # derived from the key alone: another process answers the same
    again = await SandboxProvider().charge(ChargeRequest("k1", EUR_10, PaymentMeans(SUCCESS_CARD)))
    assert again == result


@pytest.mark.anyio
async def test_the_sandbox_declines_the_declined_card() -> None:
    result = await SandboxProvider().charge(
        ChargeRequest("k2", EUR_10, PaymentMeans(DECLINED_CARD))
    )
    assert result == ChargeResult(Outcome.DECLINED, reason="card_declined")


@pytest.mark.anyio
async def test_the_sandbox_fails_with_a_processing_error_on_the_error_card() -> None:
    result = await SandboxProvider().charge(ChargeRequest("k3", EUR_10, PaymentMeans(ERROR_CARD)))
    assert result == ChargeResult(Outcome.ERROR, reason="processing_error")


@pytest.mark.anyio
async def test_the_sandbox_answers_a_repeated_key_with_the_first_result() -> None:
    sandbox = SandboxProvider()
    first = await sandbox.charge(ChargeRequest("k", EUR_10, PaymentMeans(DECLINED_CARD)))
    again = await sandbox.charge(ChargeRequest("k", Money(1, "EUR"), PaymentMeans(SUCCESS_CARD)))
    assert again == first == ChargeResult(Outcome.DECLINED, reason="card_declined")


@pytest.mark.anyio
async def test_the_sandbox_gives_different_keys_different_references() -> None:
    sandbox = SandboxProvider()
    a = await sandbox.charge(ChargeRequest("a", EUR_10, PaymentMeans(SUCCESS_CARD)))
    b = await sandbox.charge(ChargeRequest("b", EUR_10, PaymentMeans(SUCCESS_CARD)))
    assert a.reference != b.reference


@pytest.mark.anyio
async def test_the_sandbox_remembers_charges_for_lookup_and_knows_no_others() -> None:
    sandbox = SandboxProvider()
    assert await sandbox.lookup(idempotency_key="k") is None
    charged = await sandbox.charge(ChargeRequest("k", EUR_10, PaymentMeans(ERROR_CARD)))
    assert await sandbox.lookup(idempotency_key="k") == charged
    assert await SandboxProvider().lookup(idempotency_key="k") is None


@pytest.mark.anyio
async def test_the_sandbox_refunds_with_a_reference_from_the_refund_key() -> None:
    sandbox = SandboxProvider()
    refund = await sandbox.refund(idempotency_key="r1", reference="sbx_x", amount=EUR_10)
    again = await sandbox.refund(idempotency_key="r1", reference="sbx_x", amount=EUR_10)
    assert refund.outcome is Outcome.CAPTURED
    assert refund == again
    assert refund.reference.startswith("sbx_")
    other = await sandbox.refund(idempotency_key="r2", reference="sbx_x", amount=EUR_10)
    assert other.reference != refund.reference
