"""Draft use cases against the fake unit of work: lines, discounts, addresses, who may edit,
and stale versions."""

from __future__ import annotations

import pytest

from mercato.catalog import ProductInactive, ProductNotFound
from mercato.kernel.errors import InvalidValue, NotFound
from mercato.kernel.money import Money
from mercato.orders import NewLine, OrderNotFound
from mercato.orders.domain import NotOwner, OrderConflict, Totals
from tests.fakes.orders import HOME, STAFF, OrdersWorld

pytestmark = pytest.mark.anyio


async def test_a_new_draft_is_priced_stored_at_version_1_and_publishes_nothing() -> None:
    world = OrdersWorld()
    order = await world.draft(world.customer(), {"p1": 2, "p2": 1})
    stored = world.stored(order.id)
    assert (stored.version, stored.status.value) == (1, "draft")
    assert {pid: ln.quantity.value for pid, ln in stored.lines.items()} == {"p1": 2, "p2": 1}
    # 30.00 of goods, 750 g shipped at home (4.90 + 1.00), 19 % tax on 35.90
    assert stored.totals == Totals(
        Money(3000, "EUR"),
        Money(0, "EUR"),
        Money(590, "EUR"),
        Money(682, "EUR"),
        Money(4272, "EUR"),
    )
    assert world.transact.outbox == []


async def test_a_draft_with_an_unknown_product_is_refused_and_nothing_is_stored() -> None:
    world = OrdersWorld()
    world.stock.add_product("p1", stock=5)
    with pytest.raises(ProductNotFound):
        await world.orders.create(world.customer(), lines=[NewLine("p1", 1), NewLine("nope", 1)])
    assert world.transact.tables.get("orders", {}) == {}


async def test_an_inactive_product_cannot_be_added() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    world.stock.add_product("gone", stock=5)
    world.stock.row("gone").active = False
    with pytest.raises(ProductInactive):
        await world.orders.add_line(owner, order.id, product_id="gone", quantity=1)
    assert list(world.stored(order.id).lines) == ["p1"]


async def test_an_unknown_discount_code_is_refused_before_any_work() -> None:
    world = OrdersWorld()
    with pytest.raises(InvalidValue) as exc:
        await world.orders.create(world.customer(), discount_code="FREE")
    assert exc.value.field == "discount_code"
    assert world.transact.units == 0


async def test_adding_a_product_already_on_the_order_raises_its_quantity_and_reprices() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1}, address=False)
    after = await world.orders.add_line(owner, order.id, product_id="p1", quantity=2)
    assert after.lines["p1"].quantity.value == 3
    assert after.version == 2
    assert world.stored(order.id).totals.subtotal == Money(3000, "EUR")


async def test_setting_and_removing_lines_reprice_the_draft() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1, "p2": 1}, address=False)
    await world.orders.set_line_quantity(owner, order.id, product_id="p1", quantity=4)
    after = await world.orders.remove_line(owner, order.id, product_id="p2")
    assert {pid: ln.quantity.value for pid, ln in after.lines.items()} == {"p1": 4}
    assert world.stored(order.id).totals.subtotal == Money(4000, "EUR")
    assert world.stored(order.id).version == 3


async def test_removing_a_line_the_order_does_not_have_is_refused() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    with pytest.raises(NotFound) as exc:
        await world.orders.remove_line(owner, order.id, product_id="p9")
    assert exc.value.code == "line_not_found"
    assert world.stored(order.id).version == 1


async def test_a_discount_is_applied_and_removed_with_the_totals_following() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 3}, address=False)
    discounted = await world.orders.apply_discount(owner, order.id, code="welcome10")
    assert (discounted.discount_code, discounted.totals.discount) == (
        "WELCOME10",
        Money(300, "EUR"),
    )
    plain = await world.orders.apply_discount(owner, order.id, code=None)
    assert (plain.discount_code, plain.totals.discount) == (None, Money(0, "EUR"))


async def test_an_address_brings_the_shipping_cost_and_billing_defaults_to_it() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1}, address=False)
    assert order.totals.shipping == Money(0, "EUR")
    after = await world.orders.set_addresses(owner, order.id, shipping=HOME, billing=None)
    assert (after.billing_address, after.totals.shipping) == (HOME, Money(590, "EUR"))


async def test_another_customer_cannot_see_or_edit_a_draft() -> None:
    world = OrdersWorld()
    order = await world.draft(world.customer("owner"), {"p1": 1})
    stranger = world.customer("stranger")
    with pytest.raises(OrderNotFound):
        await world.orders.add_line(stranger, order.id, product_id="p1", quantity=1)
    with pytest.raises(OrderNotFound):
        await world.orders.get(stranger, order.id)
    assert world.stored(order.id).version == 1


async def test_staff_may_see_but_not_edit_a_customers_draft() -> None:
    world = OrdersWorld()
    order = await world.draft(world.customer(), {"p1": 1})
    assert (await world.orders.get(STAFF, order.id)).id == order.id
    with pytest.raises(NotOwner):
        await world.orders.set_line_quantity(STAFF, order.id, product_id="p1", quantity=5)


async def test_an_edit_against_a_stale_version_is_refused_with_the_current_one() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    await world.orders.add_line(owner, order.id, product_id="p1", quantity=1, expected_version=1)
    with pytest.raises(OrderConflict) as exc:
        await world.orders.add_line(
            owner, order.id, product_id="p1", quantity=1, expected_version=1
        )
    assert exc.value.data["current_version"] == 2
    assert world.stored(order.id).lines["p1"].quantity.value == 2


async def test_a_write_that_lost_the_race_for_the_row_is_a_conflict_and_changes_nothing() -> None:
    world = OrdersWorld()
    owner = world.customer()
    order = await world.draft(owner, {"p1": 1})
    world.stock.add_product("p2", stock=5)

    def another_writer_commits() -> None:  # between this command's read and its write
        world.stored(order.id).version = 7

    world.stock.meanwhile = another_writer_commits
    with pytest.raises(OrderConflict) as exc:
        await world.orders.add_line(owner, order.id, product_id="p2", quantity=1)
    assert exc.value.data["current_version"] == 7
    assert list(world.stored(order.id).lines) == ["p1"]


async def test_a_page_lists_only_the_callers_orders_newest_first() -> None:
    world = OrdersWorld()
    mine = [await world.draft(world.customer("me"), {"p1": 1}) for _ in range(3)]
    await world.draft(world.customer("other"), {"p1": 1})
    page = await world.orders.list_orders(
        world.customer("me"), status=None, customer_id="other", before=None, limit=2
    )
    assert [o.id for o in page.items] == sorted((o.id for o in mine), reverse=True)[:2]
    assert page.next_cursor is not None
