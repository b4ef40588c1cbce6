"""The state machine past placing, against the fake unit of work: who may move an order, which
moves are allowed, and what a cancellation gives back."""

from __future__ import annotations

import pytest

from mercato.kernel.errors import PermissionDenied
from mercato.orders import Order, Status
from mercato.orders.domain import CheckoutInProgress, InvalidTransition
from mercato.orders.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderShipped,
)
from mercato.payments import SUCCESS_CARD, ProviderError
from mercato.platform.security import Principal
from tests.fakes.orders import HOME, STAFF, OrdersWorld

pytestmark = pytest.mark.anyio


async def placed(world: OrdersWorld, owner: Principal, lines: dict[str, int]) -> Order:
    order = await world.draft(owner, lines)
    return await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)


async def test_staff_confirm_ship_and_deliver_with_one_event_per_step() -> None:
    world = OrdersWorld()
    order = await placed(world, world.customer(), {"p1": 1})
    await world.orders.confirm(STAFF, order.id)
    await world.orders.ship(STAFF, order.id, tracking_code="  TRK-1 ")
    delivered = await world.orders.deliver(STAFF, order.id)
    assert (delivered.status, delivered.tracking_code) == (Status.DELIVERED, "TRK-1")
    moves = (OrderConfirmed, OrderShipped, OrderDelivered)
    steps = [e for e in world.transact.outbox if isinstance(e, moves)]
    assert [type(e) for e in steps] == [OrderConfirmed, OrderShipped, OrderDelivered]
    shipped = steps[1]
    assert [e.version for e in steps] == [
        order.version + 1,
        order.version + 2,
        order.version + 3,
    ]
    assert isinstance(shipped, OrderShipped)
    assert shipped.shipping_address == HOME.as_dict()


async def test_a_customer_cannot_confirm_even_their_own_order() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await placed(world, owner, {"p1": 1})
    with pytest.raises(PermissionDenied) as exc:
        await world.orders.confirm(owner, order.id)
    assert exc.value.code == "staff_only"
    assert world.stored(order.id).status is Status.PLACED


@pytest.mark.parametrize("step", ["confirm", "deliver"])
async def test_steps_out_of_order_are_refused(step: str) -> None:
    world = OrdersWorld()
    order = await world.draft(world.customer(), {"p1": 1})
    with pytest.raises(InvalidTransition):
        await getattr(world.orders, step)(STAFF, order.id)
    assert world.stored(order.id).version == order.version


async def test_cancelling_a_draft_returns_no_stock_and_owes_no_refund() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 2})
    cancelled = await world.orders.cancel(owner, order.id, reason="changed my mind")
    assert cancelled.status is Status.CANCELLED
    (event,) = world.transact.events(OrderCancelled)
    assert isinstance(event, OrderCancelled)
    assert (event.refund_due, event.previous_status, event.cancelled_by) == (
        False,
        "draft",
        "customer",
    )
    row = world.stock.row("p1")
    assert (row.available, row.reserved, row.sold) == (10, 0, 0)


async def test_cancelling_a_paid_order_puts_its_units_back_on_sale_and_owes_a_refund() -> None:
    world = OrdersWorld()
    order = await placed(world, world.customer(), {"p1": 3})
    assert world.stock.row("p1").sold == 3
    await world.orders.cancel(STAFF, order.id, reason="")
    row = world.stock.row("p1")
    assert (row.available, row.reserved, row.sold) == (10, 0, 0)
    (event,) = world.transact.events(OrderCancelled)
    assert isinstance(event, OrderCancelled)
    assert (event.refund_due, event.cancelled_by, event.reason) == (
        True,
        "staff",
        "no reason given",
    )


async def test_a_shipped_order_cannot_be_cancelled_and_keeps_its_stock_sold() -> None:
    world = OrdersWorld()
    order = await placed(world, world.customer(), {"p1": 1})
    await world.orders.confirm(STAFF, order.id)
    await world.orders.ship(STAFF, order.id)
    with pytest.raises(InvalidTransition):
        await world.orders.cancel(STAFF, order.id)
    assert world.stock.row("p1").sold == 1
    assert world.transact.events(OrderCancelled) == []


async def test_an_order_being_paid_for_cannot_be_cancelled() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    world.payments.provider.answer = None  # the charge's answer is lost: the checkout stays open
    with pytest.raises(ProviderError):
        await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    with pytest.raises(CheckoutInProgress):
        await world.orders.cancel(owner, order.id)
    assert world.stock.row("p1").reserved == 1
