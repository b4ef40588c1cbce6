"""Events the payments module publishes."""

from __future__ import annotations

from dataclasses import dataclass

from mercato.kernel.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class PaymentEvent(DomainEvent):
    aggregate_type = "payment"
    aggregate_id_field = "payment_id"
    payment_id: str
    order_id: str


@dataclass(frozen=True, kw_only=True)
class PaymentCaptured(PaymentEvent):
    amount: int
    currency: str


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(PaymentEvent):
    reason: str
    outcome: str = "error"  # the provider's answer: "declined" or "error"


@dataclass(frozen=True, kw_only=True)
class PaymentRefunded(PaymentEvent):
    amount: int
    currency: str
