"""Events the customers module publishes."""

from __future__ import annotations

from dataclasses import dataclass

from mercato.kernel.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class CustomerEvent(DomainEvent):
    aggregate_type = "customer"
    aggregate_id_field = "customer_id"
    customer_id: str


@dataclass(frozen=True, kw_only=True)
class CustomerRegistered(CustomerEvent):
    email: str
    role: str


@dataclass(frozen=True, kw_only=True)
class CustomerDeactivated(CustomerEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class CustomerActivated(CustomerEvent):
    pass
