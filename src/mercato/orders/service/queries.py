"""Reading orders: one order, its head, a page of orders, its payment attempts."""

from __future__ import annotations

from mercato.orders.domain import Order, OrderNotFound, Status
from mercato.orders.service.common import orders, visible
from mercato.orders.store import OrderHead
from mercato.platform.pagination import Page, page_of
from mercato.platform.security import Principal
from mercato.platform.uow import UnitOfWork


async def get(uow: UnitOfWork, principal: Principal, order_id: str) -> Order:
    """An order its owner or staff may see; OrderNotFound for anyone else."""
    return visible(principal, await orders(uow).get(order_id), order_id)


async def head(uow: UnitOfWork, principal: Principal, order_id: str) -> OrderHead:
    """Status and version of an order the caller may see (one cheap read, no lines)."""
    found = await orders(uow).head(order_id)
    if found is None or not (principal.is_staff or found.customer_id == principal.user_id):
        raise OrderNotFound(order_id)
    return found


async def page(
    uow: UnitOfWork,
    principal: Principal,
    *,
    customer_id: str | None,
    status: Status | None,
    before: str | None,
    limit: int,
) -> Page[Order]:
    """Newest first: the caller's orders, or (staff) anyone's, optionally filtered."""
    if not principal.is_staff:
        customer_id = principal.user_id
    found = await orders(uow).page(
        customer_id=customer_id, status=status, before=before, limit=limit + 1
    )
    return page_of(found, limit)
