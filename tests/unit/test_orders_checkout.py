"""The two-phase checkout against the fake unit of work: every answer a provider can give (or
not give), what stock and payment are left with, and who may place what."""

from __future__ import annotations

import dataclasses

import pytest

from mercato.catalog import OutOfStock
from mercato.customers import CustomerInactive
from mercato.kernel.errors import InvalidValue
from mercato.kernel.money import Money
from mercato.orders import Order, Status
from mercato.orders.domain import CheckoutAbandoned, OrderNotDraft
from mercato.orders.events import OrderPlaced
from mercato.payments import (
    SUCCESS_CARD,
    ChargeResult,
    Outcome,
    PaymentDeclined,
    ProviderError,
)
from mercato.payments import Status as PaymentStatus
from mercato.payments.events import PaymentCaptured
from tests.fakes.orders import OrdersWorld

pytestmark = pytest.mark.anyio


def payment_of(world: OrdersWorld, order: Order) -> str:
    (payment,) = world.transact.tables["payments"].values()
    assert payment.order_id == order.id
    return str(payment.id)


async def test_a_captured_payment_places_the_order_and_sells_the_stock() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 2, "p2": 1})
    placed = await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert (placed.status, placed.checkout_payment_id) == (Status.PLACED, None)
    assert world.stored(order.id).status is Status.PLACED
    assert [(world.stock.row(p).reserved, world.stock.row(p).sold) for p in ("p1", "p2")] == [
        (0, 2),
        (0, 1),
    ]
    payment = world.payments.stored(payment_of(world, order))
    assert (payment.status, payment.amount) == (PaymentStatus.CAPTURED, placed.totals.total)
    (event,) = world.transact.events(OrderPlaced)
    assert isinstance(event, OrderPlaced)
    assert (event.payment_id, event.total) == (payment.id, placed.totals.total.amount)
    assert len(world.transact.events(PaymentCaptured)) == 1


@pytest.mark.parametrize(
    ("outcome", "error"),
    [(Outcome.DECLINED, PaymentDeclined), (Outcome.ERROR, ProviderError)],
)
async def test_a_refused_charge_reopens_the_draft_and_releases_the_stock(
    outcome: Outcome, error: type[Exception]
) -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 2})
    world.payments.provider.answer = ChargeResult(outcome, reason="insufficient_funds")
    with pytest.raises(error):
        await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    stored = world.stored(order.id)
    assert (stored.status, stored.in_checkout) == (Status.DRAFT, False)
    row = world.stock.row("p1")
    assert (row.available, row.reserved, row.sold) == (10, 0, 0)
    assert world.payments.stored(payment_of(world, order)).status is PaymentStatus.FAILED
    # the customer can edit and retry at once
    world.payments.provider.answer = ChargeResult(Outcome.CAPTURED)
    await world.orders.add_line(owner, order.id, product_id="p1", quantity=1)
    retried = await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert (retried.status, world.stock.row("p1").sold) == (Status.PLACED, 3)


async def test_no_answer_leaves_the_checkout_to_the_reconciler_which_fails_it() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    world.payments.provider.answer = None  # lost on the way: the provider never saw the charge
    with pytest.raises(ProviderError):
        await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert world.stored(order.id).in_checkout
    assert world.stock.row("p1").reserved == 1
    assert await world.reconciler.run_once() == 1
    stored = world.stored(order.id)
    assert (stored.status, stored.in_checkout) == (Status.DRAFT, False)
    payment = world.payments.stored(payment_of(world, order))
    assert (payment.status, payment.failure_reason) == (PaymentStatus.FAILED, "abandoned")
    assert (world.stock.row("p1").available, world.stock.row("p1").reserved) == (10, 0)


async def test_a_charge_captured_but_unanswered_is_placed_by_the_reconciler() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    world.payments.provider.unreachable = True  # the request dies mid-call ...
    with pytest.raises(ProviderError):
        await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    world.payments.provider.unreachable = False
    key = f"mercato-charge-{payment_of(world, order)}"
    world.payments.provider.charges[key] = ChargeResult(Outcome.CAPTURED, reference="ch_1")
    assert await world.reconciler.run_once() == 1  # ... but the provider had captured it
    assert world.stored(order.id).status is Status.PLACED
    assert world.stock.row("p1").sold == 1
    assert await world.reconciler.run_once() == 0  # nothing left pending: settled once


async def test_a_reconciler_that_cannot_reach_the_provider_leaves_the_checkout_for_later() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    world.payments.provider.unreachable = True
    with pytest.raises(ProviderError):
        await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert await world.reconciler.run_once() == 0
    assert world.stored(order.id).in_checkout
    assert world.stock.row("p1").reserved == 1


async def test_a_capture_arriving_after_the_checkout_was_given_up_is_refunded() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    # while the charge is on the wire, the reconciler finds nothing at the provider and gives up

    async def reconcile() -> None:
        await world.reconciler.run_once()

    world.payments.provider.meanwhile = reconcile
    with pytest.raises(CheckoutAbandoned):
        await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    payment_id = payment_of(world, order)
    assert world.payments.provider.refunds == [payment_id]
    assert world.payments.stored(payment_id).status is PaymentStatus.FAILED
    stored = world.stored(order.id)
    assert (stored.status, stored.in_checkout) == (Status.DRAFT, False)
    row = world.stock.row("p1")
    assert (row.available, row.reserved, row.sold) == (10, 0, 0)  # not sold: never oversold
    assert world.transact.events(OrderPlaced) == []


async def test_settling_a_checkout_twice_places_the_order_once() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    placed = await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    payment_id = payment_of(world, order)
    again = await world.orders.settle_checkout(order.id, payment_id, ChargeResult(Outcome.CAPTURED))
    assert (again.status, again.version) == (Status.PLACED, placed.version)
    assert len(world.transact.events(OrderPlaced)) == 1
    assert world.stock.row("p1").sold == 1


async def test_stock_for_one_line_short_reserves_nothing_for_the_others() -> None:
    world = OrdersWorld()
    owner = world.customer()
    world.stock.add_product("scarce", stock=1)
    order = await world.draft(owner, {"p1": 2, "scarce": 1})
    world.stock.row("scarce").available = 0  # sold to someone else meanwhile
    with pytest.raises(OutOfStock):
        await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert (world.stock.row("p1").available, world.stock.row("p1").reserved) == (10, 0)
    assert world.transact.tables.get("payments", {}) == {}
    assert not world.stored(order.id).in_checkout


async def test_two_customers_racing_for_the_last_unit_cannot_both_buy_it() -> None:
    world = OrdersWorld()
    world.stock.add_product("last", stock=1)
    first, second = world.customer("a"), world.customer("b")
    one = await world.draft(first, {"last": 1})
    two = await world.draft(second, {"last": 1})
    await world.orders.place(first, one.id, card_number=SUCCESS_CARD)
    with pytest.raises(OutOfStock):
        await world.orders.place(second, two.id, card_number=SUCCESS_CARD)
    row = world.stock.row("last")
    assert (row.available, row.reserved, row.sold) == (0, 0, 1)


async def test_an_inactive_customer_cannot_place_and_nothing_is_reserved() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    world.customers.active[owner.user_id] = False
    with pytest.raises(CustomerInactive):
        await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert world.stock.row("p1").reserved == 0


@pytest.mark.parametrize(
    ("lines", "address", "code"),
    [({}, True, "empty_order"), ({"p1": 1}, False, "missing_address")],
)
async def test_an_unplaceable_draft_is_refused_before_any_stock_is_held(
    lines: dict[str, int], address: bool, code: str
) -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, lines, address=address)
    with pytest.raises(InvalidValue) as exc:
        await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert exc.value.code == code
    assert world.transact.tables.get("holds", []) == []


async def test_placing_a_placed_order_again_says_so_even_when_the_stock_is_gone() -> None:
    world = OrdersWorld()
    owner = world.customer()
    world.stock.add_product("last", stock=1)
    order = await world.draft(owner, {"last": 1})
    await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    with pytest.raises(OrderNotDraft):
        await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert world.stock.row("last").sold == 1


async def test_the_order_is_charged_at_the_price_the_product_has_when_it_is_placed() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    row = world.stock.row("p1")
    row.line = dataclasses.replace(row.line, price=Money(1500, "EUR"))
    placed = await world.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert placed.lines["p1"].unit_price == Money(1500, "EUR")
    assert world.payments.stored(payment_of(world, order)).amount == placed.totals.total
