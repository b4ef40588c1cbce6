"""What every orders use case shares: its collaborators, the order a command addresses, and
loading that order under lock for the caller allowed to change it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from mercato.catalog import ReservedLine, StockForOrders
from mercato.customers import CustomersForOrders
from mercato.kernel.errors import PermissionDenied
from mercato.orders.domain import (
    Order,
    OrderConflict,
    OrderNotFound,
    PricingService,
    ProductInfo,
    ShippingCalculator,
)
from mercato.orders.store import OrderRepository
from mercato.payments import PaymentsForOrders
from mercato.platform.security import Principal
from mercato.platform.uow import UnitOfWork


class Actor(Enum):
    """Who may run a command on an order."""

    OWNER = "owner"
    STAFF = "staff"
    OWNER_OR_STAFF = "owner_or_staff"


@dataclass(frozen=True, slots=True)
class Deps:
    """The collaborators and settings of the orders use cases."""

    catalog: StockForOrders
    customers: CustomersForOrders
    payments: PaymentsForOrders
    pricing: PricingService
    shipping: ShippingCalculator
    currency: str
    reservation_ttl: timedelta


@dataclass(frozen=True, slots=True)
class Target:
    """The order a command addresses, who sends it, and the version they last saw (if given)."""

    principal: Principal
    order_id: str
    expected_version: int | None = None


def orders(uow: UnitOfWork) -> OrderRepository:
    """The unit of work's order repository."""
    return uow.repository(OrderRepository)


def visible(principal: Principal, order: Order | None, order_id: str) -> Order:
    """The order if the caller may see it (its owner, or staff); OrderNotFound otherwise."""
    if order is None or not (principal.is_staff or order.customer_id == principal.user_id):
        raise OrderNotFound(order_id)
    return order


async def locked(uow: UnitOfWork, target: Target, actor: Actor) -> Order:
    """The target order, row-locked, once the caller is known to be allowed to change it."""
    return allowed(target, await orders(uow).get(target.order_id, lock=True), actor)


def allowed(target: Target, order: Order | None, actor: Actor) -> Order:
    """The target order (loaded under lock) if the caller may change it; raises otherwise."""
    principal, order_id = target.principal, target.order_id
    order = visible(principal, order, order_id)
    if actor is Actor.STAFF and not principal.is_staff:
        raise PermissionDenied("staff_only", "only staff may do this")
    if actor is Actor.OWNER:
        order.ensure_owner(principal.user_id)
    expected = target.expected_version
    if expected is not None and expected != order.version:
        raise OrderConflict(order_id, current_version=order.version)
    return order


async def repriced(uow: UnitOfWork, deps: Deps, order: Order) -> Order:
    """Reprice a changed order (a no-op past draft) and save it."""
    order.reprice(deps.pricing, deps.shipping)
    await orders(uow).save(order)
    return order


def product_info(line: ReservedLine) -> ProductInfo:
    """The catalog's description of a product, as an order line needs it."""
    return ProductInfo(line.product_id, line.sku, line.name, line.price, line.weight_grams)
