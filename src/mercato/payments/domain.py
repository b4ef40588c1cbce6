"""Payments: one record per attempt to charge an order, and the provider protocol.

A payment is written as ``pending`` *before* the provider is called, carrying the idempotency
key it sends; the provider's answer then moves it to ``captured`` or ``failed``. A captured
payment can later be ``refunded``. The database allows at most one pending-or-captured (or
refunded) payment per order, so an order can never be charged twice.

A checkout pays with exactly one of a *payment method* (the id of a card the provider's client
library tokenised in the customer's browser, e.g. Stripe's ``pm_...``: mercato never sees the
card) or a raw *card number* (sandbox, development and tests). With a payment method the last
four digits are unknown when the payment opens (``card_last4`` is ``""``); they are recorded
when the provider's answer tells them.

Sandbox test cards and payment methods (the built-in provider answers deterministically; the
ids are Stripe's test PaymentMethods):

- 4242 4242 4242 4242, ``pm_card_visa``, ``pm_card_mastercard``, any other number or id:
  captured;
- 4000 0000 0000 0002, ``pm_card_chargeDeclined...``, ``pm_card_visa_chargeDeclined...``:
  declined (``card_declined``);
- 4000 0000 0000 0119, ``pm_card_chargeDeclinedProcessingError``: provider error
  (``processing_error``), retryable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, Protocol

from mercato.kernel.errors import Conflict, InvalidValue, NotFound, PaymentRequired, Unavailable
from mercato.kernel.events import AggregateRoot
from mercato.kernel.money import Money
from mercato.payments.events import PaymentCaptured, PaymentFailed, PaymentRefunded

SUCCESS_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
ERROR_CARD = "4000000000000119"
ERROR_PAYMENT_METHOD = "pm_card_chargeDeclinedProcessingError"
DECLINED_PAYMENT_METHODS = ("pm_card_chargeDeclined", "pm_card_visa_chargeDeclined")  # prefixes

# A provider's payment method id: Stripe's are ``pm_`` and letters and digits (older ones
# ``card_...``); nothing else may travel in the provider request built from it.
PAYMENT_METHOD_PATTERN = r"^[A-Za-z0-9_]{3,255}$"
_PAYMENT_METHOD_ID = re.compile(PAYMENT_METHOD_PATTERN)
CARD_NUMBER_PATTERN = r"^[0-9 -]{12,23}$"
"""A card number as sent: digits grouped by spaces or hyphens (12-19 digits, Luhn-checked)."""


class ErrorCode(StrEnum):
    INVALID_CARD = "invalid_card"
    INVALID_PAYMENT_METHOD = "invalid_payment_method"
    PAYMENT_METHOD_REQUIRED = "payment_method_required"
    PAYMENT_METHOD_AMBIGUOUS = "payment_method_ambiguous"
    PAYMENT_DECLINED = "payment_declined"
    PROVIDER_ERROR = "payment_provider_error"
    PAYMENT_NOT_FOUND = "payment_not_found"
    ALREADY_PAID = "order_already_paid"
    INVALID_TRANSITION = "invalid_payment_transition"
    PAYMENT_CONFLICT = "payment_conflict"


class Status(StrEnum):
    PENDING = "pending"
    CAPTURED = "captured"
    FAILED = "failed"
    REFUNDED = "refunded"


class Outcome(StrEnum):
    CAPTURED = "captured"
    DECLINED = "declined"
    ERROR = "error"


class PaymentDeclined(PaymentRequired):
    def __init__(self, reason: str) -> None:
        super().__init__(
            ErrorCode.PAYMENT_DECLINED, f"the card was declined ({reason})", reason=reason
        )


class ProviderError(Unavailable):
    def __init__(self, reason: str) -> None:
        super().__init__(
            ErrorCode.PROVIDER_ERROR,
            f"the payment provider failed ({reason}); nothing was charged, retry later",
            retry_after=5,
            reason=reason,
        )


class AlreadyPaid(Conflict):
    def __init__(self, order_id: str) -> None:
        super().__init__(
            ErrorCode.ALREADY_PAID,
            "the order already has a payment in progress or captured",
            order_id=order_id,
        )


class PaymentNotFound(NotFound):
    def __init__(self, payment_id: str) -> None:
        super().__init__(ErrorCode.PAYMENT_NOT_FOUND, "no such payment", payment_id=payment_id)


class PaymentMoved(Conflict):
    def __init__(self, payment_id: str) -> None:
        super().__init__(
            ErrorCode.PAYMENT_CONFLICT,
            "the payment was changed by someone else meanwhile",
            payment_id=payment_id,
        )


def check_card(number: str) -> str:
    """Digits only, 12-19 long, passing the Luhn check; returns the normalised number."""
    digits = number.replace(" ", "").replace("-", "")
    valid_digits = digits.isascii() and digits.isdigit()  # isdigit alone accepts "²" or "٤"
    if not valid_digits or not 12 <= len(digits) <= 19 or not _luhn_ok(digits):
        raise InvalidValue(ErrorCode.INVALID_CARD, "not a valid card number", field="card_number")
    return digits


def check_payment_method(value: str) -> str:
    """A provider's payment method id: 3-255 ASCII letters, digits and underscores."""
    if _PAYMENT_METHOD_ID.fullmatch(value) is None:
        raise InvalidValue(
            ErrorCode.INVALID_PAYMENT_METHOD,
            "payment_method: not a payment method id (3-255 ASCII letters, digits and _)",
            field="payment_method",
        )
    return value


class PaymentMeans(NamedTuple):
    """What a checkout pays with: a provider's payment method id or (test mode) a card number.

    :func:`check_payment` makes one with exactly one of the two set.
    """

    card_number: str | None = None
    payment_method: str | None = None

    @property
    def card_last4(self) -> str:
        """The card's last four digits; "" for a payment method (the provider tells them)."""
        return self.card_number[-4:] if self.card_number else ""


def check_payment(*, card_number: str | None, payment_method: str | None) -> PaymentMeans:
    """Exactly one of a card number and a payment method id, each checked."""
    if card_number is not None and payment_method is not None:
        raise InvalidValue(
            ErrorCode.PAYMENT_METHOD_AMBIGUOUS,
            "card_number: give either card_number or payment_method, not both",
            field="card_number",
        )
    if payment_method is not None:
        return PaymentMeans(payment_method=check_payment_method(payment_method))
    if card_number is not None:
        return PaymentMeans(card_number=check_card(card_number))
    raise InvalidValue(
        ErrorCode.PAYMENT_METHOD_REQUIRED,
        "payment_method: a payment method id (or, in test mode, a card_number) is required",
        field="payment_method",
    )


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """What a provider said about a charge."""

    outcome: Outcome
    reference: str = ""
    reason: str = ""
    card_last4: str = ""  # when the provider says which card paid

    def refusal(self) -> PaymentDeclined | ProviderError:
        """The error a charge that was not captured means to the customer."""
        if self.outcome is Outcome.DECLINED:
            return PaymentDeclined(self.reason or "declined")
        return ProviderError(self.reason or "error")


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """What a provider is asked to capture: ``amount``, paid by ``means``, once per key."""

    idempotency_key: str
    amount: Money
    means: PaymentMeans


@dataclass(frozen=True, slots=True)
class PaymentOpening:
    """A pending payment to record before its charge: for which order, how much, paid how."""

    payment_id: str
    order_id: str
    amount: Money
    means: PaymentMeans


class PaymentProvider(Protocol):
    """A card processor. Every call must be idempotent on its idempotency key."""

    name: str

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Capture the amount from the payment method or (test mode) the card number."""
        ...

    async def refund(self, *, idempotency_key: str, reference: str, amount: Money) -> ChargeResult:
        """Give back a captured charge."""
        ...

    async def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        """What became of an earlier charge with this key (None if the provider never saw it)."""
        ...


@dataclass(eq=False)
class Payment(AggregateRoot):
    """One attempt to charge an order."""

    id: str
    order_id: str
    amount: Money
    status: Status
    provider: str
    idempotency_key: str
    card_last4: str
    created_at: datetime
    updated_at: datetime
    provider_reference: str = ""
    failure_reason: str = ""

    @classmethod
    def open(
        cls,
        *,
        id: str,
        order_id: str,
        amount: Money,
        provider: str,
        card_last4: str,
        now: datetime,
    ) -> Payment:
        """A pending payment whose idempotency key is derived from its own id."""
        return cls(
            id=id,
            order_id=order_id,
            amount=amount,
            status=Status.PENDING,
            provider=provider,
            idempotency_key=f"mercato-charge-{id}",
            card_last4=card_last4,
            created_at=now,
            updated_at=now,
        )

    def settle(self, result: ChargeResult, *, now: datetime) -> None:
        """Record the provider's answer to the charge."""
        if self.status is not Status.PENDING:
            raise Conflict(ErrorCode.INVALID_TRANSITION, f"payment is already {self.status}")
        self.updated_at = now
        if not self.card_last4 and _is_last4(result.card_last4):
            self.card_last4 = result.card_last4
        if result.outcome is Outcome.CAPTURED:
            self.status = Status.CAPTURED
            self.provider_reference = result.reference
            self.record(
                PaymentCaptured(
                    payment_id=self.id,
                    order_id=self.order_id,
                    amount=self.amount.amount,
                    currency=self.amount.currency,
                )
            )
        else:
            self.status = Status.FAILED
            self.failure_reason = result.reason or result.outcome.value
            self.record(
                PaymentFailed(
                    payment_id=self.id,
                    order_id=self.order_id,
                    reason=self.failure_reason,
                    outcome=result.outcome.value,
                )
            )

    def mark_refunded(self, *, now: datetime) -> None:
        """Record that the provider gave the money back."""
        if self.status is not Status.CAPTURED:
            raise Conflict(ErrorCode.INVALID_TRANSITION, f"cannot refund a {self.status} payment")
        self.status = Status.REFUNDED
        self.updated_at = now
        self.record(
            PaymentRefunded(
                payment_id=self.id,
                order_id=self.order_id,
                amount=self.amount.amount,
                currency=self.amount.currency,
            )
        )

    @property
    def refund_key(self) -> str:
        """The idempotency key of this payment's refund."""
        return f"mercato-refund-{self.id}"


def _is_last4(value: str) -> bool:
    return len(value) == 4 and value.isascii() and value.isdigit()
