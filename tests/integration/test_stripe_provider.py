"""The Stripe provider against a local stand-in that answers like Stripe, over real HTTP.

Each promise is attacked the way the network attacks it: declines, rate limits, answers that
never come, connections dropped after the money moved, repeats of the same request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from mercato.kernel.money import Money
from mercato.payments import ChargeRequest, ChargeResult, Outcome, PaymentMeans, StripeProvider
from tests.stripe_standin import SECRET_KEY, RunningStandIn, StripeStandIn

pytestmark = pytest.mark.anyio

VISA = "4242424242424242"
DECLINED = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
PROCESSING_ERROR = "4000000000000119"
UNLISTED = "4000056655665556"  # a valid number that is none of Stripe's test PaymentMethods
TEN_EUROS = Money(1000, "EUR")


def ten_euros(key: str, *, card: str | None = None, method: str | None = None) -> ChargeRequest:
    """A charge of ten euros under ``key``, by a card number or a payment method id."""
    return ChargeRequest(key, TEN_EUROS, PaymentMeans(card, method))


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[StripeStandIn]:
    with RunningStandIn() as standin:
        yield standin


def make_provider(
    standin: StripeStandIn, *, timeout_s: float = 2.0, retries: int = 0, key: str = SECRET_KEY
) -> StripeProvider:
    return StripeProvider(
        secret_key=key, api_base=standin.url, timeout_s=timeout_s, max_network_retries=retries
    )


@pytest.fixture
async def stripe(stripe_api: StripeStandIn) -> AsyncIterator[StripeProvider]:
    provider = make_provider(stripe_api)
    yield provider
    await provider.close()


def charges_for(standin: StripeStandIn, key: str) -> list[dict[str, object]]:
    return [i for i in standin.captured if i["metadata"].get("mercato_idempotency_key") == key]


async def test_a_charge_is_captured_and_found_again_by_its_idempotency_key(
    stripe: StripeProvider, stripe_api: StripeStandIn
) -> None:
    result = await stripe.charge(ten_euros("k-capture", card=VISA))

    assert result.outcome is Outcome.CAPTURED
    (intent,) = charges_for(stripe_api, "k-capture")
    assert result.reference == intent["id"]
    assert (intent["amount"], intent["currency"]) == (1000, "eur")
    assert await stripe.lookup(idempotency_key="k-capture") == result
    assert await stripe.lookup(idempotency_key="k-never-sent") is None


@pytest.mark.parametrize(
    ("card", "reason"), [(DECLINED, "generic_decline"), (INSUFFICIENT_FUNDS, "insufficient_funds")]
)
async def test_a_declined_card_is_declined_with_stripes_decline_code(
    stripe: StripeProvider, stripe_api: StripeStandIn, card: str, reason: str
) -> None:
    key = f"k-decline-{card}"
    result = await stripe.charge(ten_euros(key, card=card))

    assert result == ChargeResult(Outcome.DECLINED, reason=reason)
    assert charges_for(stripe_api, key) == []
    assert await stripe.lookup(idempotency_key=key) == result  # what the reconciler would see


async def test_a_processing_error_is_a_failure_that_may_be_retried(stripe: StripeProvider) -> None:
    result = await stripe.charge(ten_euros("k-processing", card=PROCESSING_ERROR))
    assert result == ChargeResult(Outcome.ERROR, reason="processing_error")


async def test_a_rate_limited_charge_fails_and_charges_nothing(
    stripe_api: StripeStandIn,
) -> None:
    provider = make_provider(stripe_api, retries=2)  # Stripe's client does not retry a 429
    stripe_api.next_charge("rate_limit")
    try:
        result = await provider.charge(ten_euros("k-429", card=VISA))
    finally:
        await provider.close()
    assert result == ChargeResult(Outcome.ERROR, reason="rate_limited")
    assert charges_for(stripe_api, "k-429") == []
    assert await make_provider(stripe_api).lookup(idempotency_key="k-429") is None


async def test_a_refused_api_key_fails_and_charges_nothing(stripe_api: StripeStandIn) -> None:
    provider = make_provider(stripe_api, key="sk_test_revoked" + "0" * 20)
    try:
        result = await provider.charge(ten_euros("k-401", card=VISA))
    finally:
        await provider.close()
    assert result == ChargeResult(Outcome.ERROR, reason="provider_refused_key")
    assert charges_for(stripe_api, "k-401") == []


@pytest.mark.parametrize("trouble", ["server_error", ("slow", 1.5), "drop"])
async def test_no_answer_is_an_unknown_answer_not_a_failure(
    stripe_api: StripeStandIn, trouble: object
) -> None:
    provider = make_provider(stripe_api, timeout_s=0.5)
    stripe_api.next_charge(trouble)
    key = f"k-unknown-{trouble!r}"
    started = time.monotonic()
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011  # the protocol's "unknown"
            await provider.charge(ten_euros(key, card=VISA))
    finally:
        await provider.close()
    assert time.monotonic() - started < 1.4  # the client's timeout, not the stand-in's delay


async def test_repeating_a_charge_with_the_same_key_charges_once(
    stripe: StripeProvider, stripe_api: StripeStandIn
) -> None:
    first = await stripe.charge(ten_euros("k-twice", card=VISA))
    again = await stripe.charge(ten_euros("k-twice", card=VISA))

    assert first == again
    assert len(charges_for(stripe_api, "k-twice")) == 1


async def test_the_clients_own_retry_after_a_dropped_answer_charges_once(
    stripe_api: StripeStandIn,
) -> None:
    provider = make_provider(stripe_api, retries=1)
    stripe_api.next_charge("drop")  # the charge is made, its answer lost; the retry replays
    try:
        result = await provider.charge(ten_euros("k-retried", card=VISA))
    finally:
        await provider.close()
    assert result.outcome is Outcome.CAPTURED
    (intent,) = charges_for(stripe_api, "k-retried")
    assert result.reference == intent["id"]


async def test_a_card_number_is_never_logged(
    stripe_api: StripeStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = make_provider(stripe_api)
    try:
        for number in (VISA, UNLISTED):
            await provider.charge(ten_euros(f"k-logged-{number}", card=number))
    finally:
        await provider.close()
    sent = [params for method, _, params in stripe_api.requests if method == "POST"]
    assert any(p.get("payment_method_data", {}).get("card") for p in sent)  # it did travel
    assert VISA not in caplog.text
    assert UNLISTED not in caplog.text


async def test_a_raw_card_number_without_expiry_fails_without_charging(
    stripe: StripeProvider, stripe_api: StripeStandIn
) -> None:
    result = await stripe.charge(ten_euros("k-raw", card=UNLISTED))
    assert result == ChargeResult(Outcome.ERROR, reason="parameter_missing")
    assert charges_for(stripe_api, "k-raw") == []


async def test_a_refund_is_made_once_per_key(
    stripe: StripeProvider, stripe_api: StripeStandIn
) -> None:
    charged = await stripe.charge(ten_euros("k-refund", card=VISA))

    first = await stripe.refund(
        idempotency_key="r-refund", reference=charged.reference, amount=TEN_EUROS
    )
    again = await stripe.refund(
        idempotency_key="r-refund", reference=charged.reference, amount=TEN_EUROS
    )

    assert first.outcome is Outcome.CAPTURED
    assert first == again
    refunds = [r for r in stripe_api.refunds.values() if r["payment_intent"] == charged.reference]
    assert [r["amount"] for r in refunds] == [1000]


async def test_a_charge_refunded_elsewhere_counts_as_refunded(
    stripe: StripeProvider, stripe_api: StripeStandIn
) -> None:
    charged = await stripe.charge(ten_euros("k-by-hand", card=VISA))
    await stripe.refund(
        idempotency_key="r-dashboard", reference=charged.reference, amount=TEN_EUROS
    )

    result = await stripe.refund(
        idempotency_key="r-mercato", reference=charged.reference, amount=TEN_EUROS
    )

    assert result.outcome is Outcome.CAPTURED
    assert (
        len([r for r in stripe_api.refunds.values() if r["payment_intent"] == charged.reference])
        == 1
    )


# -- payment methods made by Stripe.js in the customer's browser ------------------------------


def sent_for(standin: StripeStandIn, key: str) -> list[dict[str, Any]]:
    """The charge requests made with this idempotency key, as the stand-in received them."""
    return [
        params
        for method, path, params in standin.requests
        if (method, path) == ("POST", "/v1/payment_intents")
        and params.get("metadata", {}).get("mercato_idempotency_key") == key
    ]


async def test_a_payment_method_is_confirmed_as_is_with_no_card_data(
    stripe: StripeProvider, stripe_api: StripeStandIn
) -> None:
    method = stripe_api.tokenise("1881")

    result = await stripe.charge(ten_euros("k-pm", method=method))

    assert result.outcome is Outcome.CAPTURED
    assert result.card_last4 == "1881"  # from the charge expanded in the same answer
    (intent,) = charges_for(stripe_api, "k-pm")
    assert result.reference == intent["id"]
    (sent,) = sent_for(stripe_api, "k-pm")
    assert (sent["payment_method"], sent["confirm"]) == (method, "true")
    assert "payment_method_data" not in sent
    assert await stripe.lookup(idempotency_key="k-pm") == result  # the reconciler's view


async def test_a_test_card_number_is_captured_with_its_last_four_digits(
    stripe: StripeProvider,
) -> None:
    result = await stripe.charge(ten_euros("k-last4", card=VISA))
    assert (result.outcome, result.card_last4) == (Outcome.CAPTURED, "4242")


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("pm_card_visa_chargeDeclined", ChargeResult(Outcome.DECLINED, reason="generic_decline")),
        (
            "pm_card_visa_chargeDeclinedInsufficientFunds",
            ChargeResult(Outcome.DECLINED, reason="insufficient_funds"),
        ),
        (
            "pm_card_chargeDeclinedExpiredCard",
            ChargeResult(Outcome.DECLINED, reason="expired_card"),
        ),
        (
            "pm_card_chargeDeclinedProcessingError",
            ChargeResult(Outcome.ERROR, reason="processing_error"),
        ),
        ("pm_neverMadeByStripeJs", ChargeResult(Outcome.ERROR, reason="resource_missing")),
    ],
)
async def test_a_refused_payment_method_charges_nothing(
    stripe: StripeProvider, stripe_api: StripeStandIn, method: str, expected: ChargeResult
) -> None:
    key = f"k-refused-{method}"
    result = await stripe.charge(ten_euros(key, method=method))

    assert result == expected
    assert charges_for(stripe_api, key) == []


async def test_repeating_a_payment_method_charge_with_the_same_key_charges_once(
    stripe_api: StripeStandIn,
) -> None:
    provider = make_provider(stripe_api, retries=1)
    method = stripe_api.tokenise("0005")
    stripe_api.next_charge("drop")  # the charge is made, its answer lost; the retry replays
    try:
        first = await provider.charge(ten_euros("k-pm-twice", method=method))
        again = await provider.charge(ten_euros("k-pm-twice", method=method))
    finally:
        await provider.close()

    assert first == again
    assert (first.outcome, first.card_last4) == (Outcome.CAPTURED, "0005")
    assert len(charges_for(stripe_api, "k-pm-twice")) == 1
