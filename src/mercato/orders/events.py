"""Events the orders module publishes. Each carries the order's version after the change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mercato.kernel.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class OrderEvent(DomainEvent):
    aggregate_type = "order"
    aggregate_id_field = "order_id"
    order_id: str
    customer_id: str
    version: int


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(OrderEvent):
    payment_id: str
    total: int
    currency: str
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class OrderConfirmed(OrderEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class OrderShipped(OrderEvent):
    tracking_code: str
    shipping_address: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class OrderDelivered(OrderEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(OrderEvent):
    reason: str
    previous_status: str
    cancelled_by: str
    refund_due: bool
