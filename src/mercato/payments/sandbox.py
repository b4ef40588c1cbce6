"""The built-in sandbox provider: deterministic answers by card number, no network.

Charges are idempotent: the same key always gets the same result (and the same reference),
also across processes, because the reference is derived from the key.
"""

from __future__ import annotations

import hashlib

from mercato.kernel.money import Money
from mercato.payments.domain import (
    DECLINED_CARD,
    ERROR_CARD,
    ChargeResult,
    Outcome,
)


def _reference(key: str) -> str:
    return "sbx_" + hashlib.sha256(key.encode()).hexdigest()[:24]


class SandboxProvider:
    """A payment provider for development and tests."""

    name = "sandbox"

    def __init__(self) -> None:
        self._seen: dict[str, ChargeResult] = {}

    async def charge(
        self, *, idempotency_key: str, amount: Money, card_number: str
    ) -> ChargeResult:
        """Succeed, decline or fail according to the test card."""
        if idempotency_key in self._seen:
            return self._seen[idempotency_key]
        if card_number == DECLINED_CARD:
            result = ChargeResult(Outcome.DECLINED, reason="card_declined")
        elif card_number == ERROR_CARD:
            result = ChargeResult(Outcome.ERROR, reason="processing_error")
        else:
            result = ChargeResult(Outcome.CAPTURED, reference=_reference(idempotency_key))
        self._seen[idempotency_key] = result
        return result

    async def refund(self, *, idempotency_key: str, reference: str, amount: Money) -> ChargeResult:
        """Always succeeds for a reference this sandbox issued."""
        return ChargeResult(Outcome.CAPTURED, reference=_reference(idempotency_key))

    async def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        """The remembered result of a charge made by this process."""
        return self._seen.get(idempotency_key)
