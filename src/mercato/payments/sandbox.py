"""The built-in sandbox provider: deterministic answers by card number or payment method.

No network, no money. Payment method ids mirror Stripe's test PaymentMethods (see
:mod:`mercato.payments.domain`), so a shop's front end can be tried against it unchanged.

Charges are idempotent: the same key always gets the same result (and the same reference),
also across processes, because the reference is derived from the key.
"""

from __future__ import annotations

import hashlib

from mercato.kernel.money import Money
from mercato.payments.domain import (
    DECLINED_CARD,
    DECLINED_PAYMENT_METHODS,
    ERROR_CARD,
    ERROR_PAYMENT_METHOD,
    ChargeRequest,
    ChargeResult,
    Outcome,
)

# The last four digits of the cards behind Stripe's test PaymentMethods.
_TEST_METHOD_LAST4 = {"pm_card_visa": "4242", "pm_card_mastercard": "4444"}


def _reference(key: str) -> str:
    return "sbx_" + hashlib.sha256(key.encode()).hexdigest()[:24]


class SandboxProvider:
    """A payment provider for development and tests."""

    name = "sandbox"

    def __init__(self) -> None:
        self._seen: dict[str, ChargeResult] = {}

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Succeed, decline or fail according to the test card or payment method."""
        key = request.idempotency_key
        if key in self._seen:
            return self._seen[key]
        card_number, payment_method = request.means
        if payment_method is not None:
            result = _answer_to_method(payment_method, key)
        elif card_number == DECLINED_CARD:
            result = ChargeResult(Outcome.DECLINED, reason="card_declined")
        elif card_number == ERROR_CARD:
            result = ChargeResult(Outcome.ERROR, reason="processing_error")
        else:
            result = ChargeResult(Outcome.CAPTURED, reference=_reference(key))
        self._seen[key] = result
        return result

    async def refund(self, *, idempotency_key: str, reference: str, amount: Money) -> ChargeResult:
        """Always succeeds for a reference this sandbox issued."""
        return ChargeResult(Outcome.CAPTURED, reference=_reference(idempotency_key))

    async def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        """The remembered result of a charge made by this process."""
        return self._seen.get(idempotency_key)


def _answer_to_method(payment_method: str, idempotency_key: str) -> ChargeResult:
    if payment_method == ERROR_PAYMENT_METHOD:
        return ChargeResult(Outcome.ERROR, reason="processing_error")
    if payment_method.startswith(DECLINED_PAYMENT_METHODS):
        return ChargeResult(Outcome.DECLINED, reason="card_declined")
    return ChargeResult(
        Outcome.CAPTURED,
        reference=_reference(idempotency_key),
        card_last4=_TEST_METHOD_LAST4.get(payment_method, ""),
    )
