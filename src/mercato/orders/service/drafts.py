"""Draft editing: start a draft, change its lines, addresses and discount."""

from __future__ import annotations

from collections.abc import Sequence

from mercato.kernel.clock import utcnow
from mercato.kernel.ids import new_id
from mercato.kernel.values import Address, Quantity
from mercato.orders.domain import Order
from mercato.orders.service.common import (
    Actor,
    Deps,
    Target,
    locked,
    orders,
    product_info,
    repriced,
)
from mercato.platform.security import Principal
from mercato.platform.uow import UnitOfWork


async def create(
    uow: UnitOfWork,
    deps: Deps,
    principal: Principal,
    *,
    currency: str,
    lines: Sequence[tuple[str, Quantity]],
    addresses: tuple[Address, Address | None] | None,
    discount: tuple[str, int] | None,
) -> Order:
    """Start a draft for the caller with its first lines, addresses and discount."""
    now = utcnow()
    order = Order.create(id=new_id(), customer_id=principal.user_id, currency=currency, now=now)
    for product_id, qty in lines:
        described = await deps.catalog.describe_for_order(uow, product_id)
        order.add_line(product_info(described), qty, now=now)
    if addresses is not None:
        order.set_addresses(*addresses, now=now)
    if discount is not None:
        order.apply_discount(*discount, now=now)
    order.version = 1  # a new order starts at version 1, however it was composed
    order.reprice(deps.pricing, deps.shipping)
    await orders(uow).add(order)
    return order


async def add_line(
    uow: UnitOfWork, deps: Deps, target: Target, *, product_id: str, quantity: Quantity
) -> Order:
    """Add units of a product (raising the quantity if it is already on the order)."""
    order = await locked(uow, target, Actor.OWNER)
    described = await deps.catalog.describe_for_order(uow, product_id)
    order.add_line(product_info(described), quantity, now=utcnow())
    return await repriced(uow, deps, order)


async def set_line_quantity(
    uow: UnitOfWork, deps: Deps, target: Target, *, product_id: str, quantity: Quantity
) -> Order:
    """Replace a line's quantity."""
    order = await locked(uow, target, Actor.OWNER)
    order.set_quantity(product_id, quantity, now=utcnow())
    return await repriced(uow, deps, order)


async def remove_line(uow: UnitOfWork, deps: Deps, target: Target, *, product_id: str) -> Order:
    """Take a product off the order."""
    order = await locked(uow, target, Actor.OWNER)
    order.remove_line(product_id, now=utcnow())
    return await repriced(uow, deps, order)


async def set_addresses(
    uow: UnitOfWork, deps: Deps, target: Target, *, shipping: Address, billing: Address | None
) -> Order:
    """Set where the order ships and whom it bills."""
    order = await locked(uow, target, Actor.OWNER)
    order.set_addresses(shipping, billing, now=utcnow())
    return await repriced(uow, deps, order)


async def apply_discount(
    uow: UnitOfWork, deps: Deps, target: Target, *, code: str | None, percent: int
) -> Order:
    """Use a discount code on the order (None removes it)."""
    order = await locked(uow, target, Actor.OWNER)
    order.apply_discount(code, percent, now=utcnow())
    return await repriced(uow, deps, order)
