"""The reservation sweeper against the fake unit of work: expired holds are settled by what the
provider knows, or released; an unreachable provider leaves them for the next round."""

from __future__ import annotations

import pytest

from mercato.catalog.events import ReservationExpired
from mercato.kernel.clock import utcnow
from mercato.orders import Order, Status
from mercato.payments import SUCCESS_CARD, ChargeResult, Outcome, ProviderError
from mercato.payments import Status as PaymentStatus
from mercato.platform.uow import UnitOfWork
from tests.fakes.orders import OrdersWorld

pytestmark = pytest.mark.anyio


async def stuck_checkout(world: OrdersWorld, lines: dict[str, int]) -> Order:
    """A checkout whose charge got no answer and whose reservation has already expired."""
    owner = world.customer()
    order = await world.draft(owner, lines)
    world.payments.provider.answer = None
    with pytest.raises(ProviderError):
        await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    return order


async def test_an_expired_unpaid_checkout_is_failed_and_its_stock_released() -> None:
    world = OrdersWorld(reservation_ttl_s=0)
    order = await stuck_checkout(world, {"p1": 2, "p2": 1})
    assert await world.sweeper.run_once() == 1
    stored = world.stored(order.id)
    assert (stored.status, stored.in_checkout) == (Status.DRAFT, False)
    (payment,) = await world.payments.list_for_order(order.id)
    assert (payment.status, payment.failure_reason) == (PaymentStatus.FAILED, "reservation_expired")
    assert [(world.stock.row(p).available, world.stock.row(p).reserved) for p in ("p1", "p2")] == [
        (10, 0),
        (10, 0),
    ]
    expired = [e for e in world.transact.outbox if isinstance(e, ReservationExpired)]
    assert sorted((e.product_id, e.quantity) for e in expired) == [("p1", 2), ("p2", 1)]
    assert await world.sweeper.run_once() == 0


async def test_an_expired_checkout_the_provider_captured_is_placed_not_released() -> None:
    world = OrdersWorld(reservation_ttl_s=0)
    order = await stuck_checkout(world, {"p1": 1})
    (payment,) = await world.payments.list_for_order(order.id)
    world.payments.provider.charges[payment.idempotency_key] = ChargeResult(Outcome.CAPTURED)
    assert await world.sweeper.run_once() == 1
    assert world.stored(order.id).status is Status.PLACED
    row = world.stock.row("p1")
    assert (row.available, row.reserved, row.sold) == (9, 0, 1)
    assert world.transact.events(ReservationExpired) == []


async def test_an_unreachable_provider_leaves_the_expired_checkout_for_the_next_round() -> None:
    world = OrdersWorld(reservation_ttl_s=0)
    order = await stuck_checkout(world, {"p1": 1})
    world.payments.provider.unreachable = True
    assert await world.sweeper.run_once() == 0
    assert world.stored(order.id).in_checkout
    assert world.stock.row("p1").reserved == 1
    world.payments.provider.unreachable = False
    assert await world.sweeper.run_once() == 1
    assert world.stock.row("p1").reserved == 0


async def test_a_hold_that_belongs_to_no_checkout_is_released() -> None:
    world = OrdersWorld(reservation_ttl_s=0)
    world.stock.add_product("p1", stock=5)

    async def orphan(uow: UnitOfWork) -> None:
        await world.stock.reserve(uow, "no-such-order", {"p1": 2}, expires_at=utcnow())

    await world.transact(orphan)
    assert world.stock.row("p1").reserved == 2
    assert await world.sweeper.run_once() == 1
    assert (world.stock.row("p1").available, world.stock.row("p1").reserved) == (5, 0)


async def test_a_checkout_whose_payment_record_is_missing_is_left_for_a_person() -> None:
    world = OrdersWorld(reservation_ttl_s=0)
    order = await stuck_checkout(world, {"p1": 1})
    world.transact.tables["payments"].clear()  # an impossible state: nothing must be guessed
    assert await world.sweeper.run_once() == 0
    assert world.stored(order.id).in_checkout
    assert world.stock.row("p1").reserved == 1
