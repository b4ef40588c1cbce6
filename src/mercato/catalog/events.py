"""Events the catalog module publishes."""

from __future__ import annotations

from dataclasses import dataclass

from mercato.kernel.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class ProductEvent(DomainEvent):
    aggregate_type = "product"
    aggregate_id_field = "product_id"
    product_id: str


@dataclass(frozen=True, kw_only=True)
class ProductCreated(ProductEvent):
    sku: str
    name: str
    price_amount: int
    currency: str


@dataclass(frozen=True, kw_only=True)
class ProductUpdated(ProductEvent):
    changed: list[str]
    active: bool


@dataclass(frozen=True, kw_only=True)
class StockAdjusted(ProductEvent):
    delta: int
    reason: str
    available: int
    actor_id: str


@dataclass(frozen=True, kw_only=True)
class ReservationExpired(ProductEvent):
    order_id: str
    quantity: int
