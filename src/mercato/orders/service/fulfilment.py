"""The state machine past placing: confirm, ship, deliver, and cancel."""

from __future__ import annotations

from mercato.kernel.clock import utcnow
from mercato.orders.domain import Order, Status
from mercato.orders.service.common import Actor, Deps, Target, locked, repriced
from mercato.platform.uow import UnitOfWork


async def confirm(uow: UnitOfWork, deps: Deps, target: Target) -> Order:
    """Staff accept a placed order."""
    order = await locked(uow, target, Actor.STAFF)
    order.confirm(now=utcnow())
    return await repriced(uow, deps, order)


async def ship(uow: UnitOfWork, deps: Deps, target: Target, *, tracking_code: str) -> Order:
    """Staff hand a confirmed order to the carrier."""
    order = await locked(uow, target, Actor.STAFF)
    order.ship(tracking_code=tracking_code, now=utcnow())
    return await repriced(uow, deps, order)


async def deliver(uow: UnitOfWork, deps: Deps, target: Target) -> Order:
    """Record that a shipped order arrived."""
    order = await locked(uow, target, Actor.STAFF)
    order.deliver(now=utcnow())
    return await repriced(uow, deps, order)


async def cancel(uow: UnitOfWork, deps: Deps, target: Target, *, reason: str) -> Order:
    """Cancel a draft, placed or confirmed order; stock that was sold goes back."""
    order = await locked(uow, target, Actor.OWNER_OR_STAFF)
    cancelled_by = target.principal.role.value
    previous = order.cancel(reason=reason, cancelled_by=cancelled_by, now=utcnow())
    if previous is not Status.DRAFT:
        await deps.catalog.return_stock(uow, order.id)
    return await repriced(uow, deps, order)
