"""Stripe as the payment provider: one PaymentIntent per payment, created and confirmed at once.

Every call goes through the official client's async methods over HTTPX (``stripe.HTTPXClient``),
so a charge never blocks the event loop, and carries the payment's idempotency key as Stripe's
``Idempotency-Key``: a repeat (the client's own network retries, or mercato asking again) gets
Stripe's stored answer and never a second charge.

Paying. A checkout normally pays with a PaymentMethod id (``pm_...``) that Stripe.js made in
the customer's browser: mercato never sees the card (PCI scope stays with Stripe) and sends the
id as ``payment_method`` with ``confirm=true``. This is how production takes real money.

Raw card numbers are for test mode: a number from Stripe's documented test cards is sent as the
matching test PaymentMethod (``pm_card_visa`` for 4242 4242 4242 4242, ...), which any account
in test mode accepts. Any other number is sent as raw card data
(``payment_method_data[card][number]``), which Stripe accepts only from accounts cleared for raw
card data, and only with an expiry date that mercato does not collect: such a charge fails with
nothing taken. The number is never logged or stored (the payment keeps its last four digits).

Every charge asks for the PaymentIntent's latest charge expanded (``expand[]=latest_charge``,
in the same request), whose ``payment_method_details.card.last4`` tells the last four digits
of a card mercato only knew by its PaymentMethod id; the payment records them when it settles.

Finding a charge again. Stripe's PaymentIntents cannot be fetched by idempotency key, so each
carries it in its metadata (``mercato_idempotency_key``) and :meth:`StripeProvider.lookup`
uses the Search API. Search lags writes by up to a minute, so the checkout reconciler must wait
at least that long (the settings refuse a shorter ``MERCATO_CHECKOUT_GRACE_S`` in staging and
production with Stripe).

What an answer means (see :class:`mercato.payments.PaymentProvider`):

- ``succeeded`` -> captured;
- a card error (HTTP 402) -> declined, with Stripe's decline code; ``processing_error`` -> a
  failure that may be retried;
- a rate limit (429), a refused key (401/403) or an invalid request (400/404): Stripe did not
  process it -> a failure, nothing charged;
- no answer (timeout, connection dropped), a server error (5xx) or an idempotency conflict: the
  charge may or may not exist -> an exception, which leaves the payment pending until the
  reconciler looks it up.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe

from mercato.kernel.money import Money
from mercato.payments.domain import ChargeRequest, ChargeResult, Outcome, PaymentMeans

METADATA_KEY = "mercato_idempotency_key"

# Stripe's test card numbers and the test PaymentMethods that stand for them.
TEST_PAYMENT_METHODS = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "4000000000000002": "pm_card_visa_chargeDeclined",
    "4000000000009995": "pm_card_visa_chargeDeclinedInsufficientFunds",
    "4000000000000069": "pm_card_chargeDeclinedExpiredCard",
    "4000000000000119": "pm_card_chargeDeclinedProcessingError",
}

# Answers Stripe gives only to requests it did not carry out: nothing was charged.
_NOT_PROCESSED: tuple[type[stripe.StripeError], ...] = (
    stripe.RateLimitError,
    stripe.AuthenticationError,
    stripe.PermissionError,
    stripe.InvalidRequestError,
)
_RETRYABLE_CARD_CODES = frozenset({"processing_error"})


class ChargeUnsettled(RuntimeError):
    """Stripe has the charge but no final answer yet (e.g. ``processing``): ask again later."""


class StripeProvider:
    """A :class:`mercato.payments.PaymentProvider` on Stripe's PaymentIntents API."""

    name = "stripe"

    def __init__(
        self,
        *,
        secret_key: str,
        api_base: str,
        timeout_s: float,
        max_network_retries: int,
    ) -> None:
        # The client logs request bodies at DEBUG, card data included.
        logging.getLogger("stripe").setLevel(logging.WARNING)
        self._http = stripe.HTTPXClient(timeout=timeout_s)
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Create and confirm a PaymentIntent; raises when the answer is unknown."""
        amount, key = request.amount, request.idempotency_key
        params: dict[str, Any] = {
            "amount": amount.amount,
            "currency": amount.currency.lower(),
            "confirm": True,
            "payment_method_types": ["card"],
            "error_on_requires_action": True,  # mercato cannot show a 3-D Secure challenge
            "metadata": {METADATA_KEY: key},
            "expand": ["latest_charge"],  # the card's last four digits, in the same answer
            **_payment_method(request.means),
        }
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params,  # type: ignore[arg-type]  # a TypedDict built from parts
                {"idempotency_key": key},
            )
        except stripe.CardError as exc:
            return _card_refused(exc)
        except _NOT_PROCESSED as exc:
            return ChargeResult(Outcome.ERROR, reason=_reason(exc))
        return _intent_result(intent)

    async def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        """The PaymentIntent made with this key, found by its metadata (None if none)."""
        found = await self._client.v1.payment_intents.search_async(
            {
                "query": f"metadata['{METADATA_KEY}']:'{_quoted(idempotency_key)}'",
                "limit": 10,
                "expand": ["data.latest_charge"],
            }
        )
        intents = [i for i in found.data if _key_of(i) == idempotency_key]
        if not intents:
            return None
        captured = [i for i in intents if i.status == "succeeded"]
        return _intent_result(captured[0] if captured else intents[0])

    async def refund(self, *, idempotency_key: str, reference: str, amount: Money) -> ChargeResult:
        """Refund the PaymentIntent ``reference`` in full, once per key."""
        try:
            refund = await self._client.v1.refunds.create_async(
                {
                    "payment_intent": reference,
                    "amount": amount.amount,
                    "metadata": {METADATA_KEY: idempotency_key},
                },
                {"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "charge_already_refunded":  # e.g. by hand in Stripe's dashboard
                return ChargeResult(Outcome.CAPTURED, reference=reference)
            return ChargeResult(Outcome.ERROR, reason=_reason(exc))
        if refund.status in ("succeeded", "pending"):
            return ChargeResult(Outcome.CAPTURED, reference=refund.id)
        return ChargeResult(Outcome.ERROR, reason=f"refund_{refund.status}")

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close_async()  # type: ignore[no-untyped-call]


def _payment_method(means: PaymentMeans) -> dict[str, Any]:
    card_number, payment_method = means
    if payment_method is not None:
        return {"payment_method": payment_method}
    if card_number is None:
        raise ValueError("a charge needs a payment method or a card number")
    test_method = TEST_PAYMENT_METHODS.get(card_number)
    if test_method is not None:
        return {"payment_method": test_method}
    return {"payment_method_data": {"type": "card", "card": {"number": card_number}}}


def _card_refused(exc: stripe.CardError) -> ChargeResult:
    error = exc.error
    decline_code = error.decline_code if error is not None else None
    code = exc.code or "card_declined"
    if code in _RETRYABLE_CARD_CODES:
        return ChargeResult(Outcome.ERROR, reason=code)
    return ChargeResult(Outcome.DECLINED, reason=decline_code or code)


def _intent_result(intent: stripe.PaymentIntent) -> ChargeResult:
    if intent.status == "succeeded":
        return ChargeResult(Outcome.CAPTURED, reference=intent.id, card_last4=_last4(intent))
    if intent.status == "requires_payment_method":  # the confirmation failed
        error = intent.last_payment_error
        code = (error.code if error is not None else None) or "card_declined"
        if code in _RETRYABLE_CARD_CODES:
            return ChargeResult(Outcome.ERROR, reason=code)
        decline_code = error.decline_code if error is not None else None
        return ChargeResult(Outcome.DECLINED, reason=decline_code or code)
    if intent.status == "canceled":
        return ChargeResult(Outcome.ERROR, reason="canceled")
    raise ChargeUnsettled(f"payment intent {intent.id} is {intent.status}")


def _last4(intent: stripe.PaymentIntent) -> str:
    """The paying card's last four digits, if the intent came with its charge expanded."""
    charge = getattr(intent, "latest_charge", None)
    if not isinstance(charge, stripe.Charge):
        return ""  # not expanded: an id only
    card = getattr(getattr(charge, "payment_method_details", None), "card", None)
    last4 = getattr(card, "last4", None)
    return last4 if isinstance(last4, str) else ""


def _key_of(intent: stripe.PaymentIntent) -> str | None:
    metadata = intent.metadata
    return str(metadata[METADATA_KEY]) if METADATA_KEY in metadata else None


def _reason(exc: stripe.StripeError) -> str:
    if isinstance(exc, stripe.RateLimitError):
        return "rate_limited"
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return "provider_refused_key"
    return exc.code or "invalid_request"


def _quoted(value: str) -> str:
    """A value for a Stripe search query string literal."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
