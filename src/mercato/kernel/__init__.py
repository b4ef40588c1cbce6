"""The shared kernel: value objects, ids, clock, errors and the domain event base. Pure Python."""

from mercato.kernel.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    InvalidValue,
    NotFound,
    PaymentRequired,
    PermissionDenied,
    Unavailable,
)
from mercato.kernel.events import AggregateRoot, DomainEvent
from mercato.kernel.ids import new_id
from mercato.kernel.money import Currency, Money, round_half_even
from mercato.kernel.values import Address, Email, Quantity

__all__ = [
    "Address",
    "AggregateRoot",
    "AuthenticationFailed",
    "Conflict",
    "Currency",
    "DomainError",
    "DomainEvent",
    "Email",
    "InvalidValue",
    "Money",
    "NotFound",
    "PaymentRequired",
    "PermissionDenied",
    "Quantity",
    "Unavailable",
    "new_id",
    "round_half_even",
]
