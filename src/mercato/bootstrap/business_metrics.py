"""Business metrics, counted from the domain events of each committed unit of work.

The composition root registers :func:`events_recorder` as a ``Transactor.after_commit`` hook:
it sees exactly the events that committed, once, in the process that committed them, so the
counts never include rolled-back work and never repeat (unlike an at-least-once subscriber).
Domain code stays unaware of metrics.
"""

from __future__ import annotations

from collections.abc import Callable

from mercato.catalog.events import ReservationExpired
from mercato.kernel.events import DomainEvent
from mercato.kernel.money import Currency
from mercato.orders.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderPlaced,
    OrderShipped,
)
from mercato.payments.events import PaymentCaptured, PaymentFailed, PaymentRefunded
from mercato.platform.metrics import Metrics

_ORDER_EVENTS: dict[type[DomainEvent], str] = {
    OrderPlaced: "placed",
    OrderConfirmed: "confirmed",
    OrderShipped: "shipped",
    OrderDelivered: "delivered",
    OrderCancelled: "cancelled",
}


def _major_units(amount: int, currency: str) -> float:
    scale: int = 10 ** Currency.minor_digits(currency)
    return amount / scale


def record_event(metrics: Metrics, event: DomainEvent) -> None:
    """Count one committed domain event."""
    kind = type(event)
    if kind in _ORDER_EVENTS:
        metrics.orders.labels(_ORDER_EVENTS[kind]).inc()
        if isinstance(event, OrderPlaced):
            metrics.order_value.labels(event.currency).observe(
                _major_units(event.total, event.currency)
            )
    elif isinstance(event, PaymentCaptured):
        metrics.payments.labels("captured").inc()
    elif isinstance(event, PaymentFailed):
        metrics.payments.labels("declined" if event.outcome == "declined" else "failed").inc()
    elif isinstance(event, PaymentRefunded):
        metrics.payments.labels("refunded").inc()
    elif isinstance(event, ReservationExpired):
        metrics.reservations_expired.inc()


def events_recorder(metrics: Metrics) -> Callable[[list[DomainEvent]], None]:
    """An after-commit hook that counts the committed events."""

    def hook(events: list[DomainEvent]) -> None:
        for event in events:
            record_event(metrics, event)

    return hook
