"""A change that waited for a lock starts from what the lock holder committed.

Each test holds an aggregate's row lock in a transaction of its own, starts a service command
that must wait for it, changes the aggregate and commits, and then checks that the waiting
command applied its change on top of that commit (PostgreSQL, READ COMMITTED). On SQLite,
writers queue for the whole database, so the interleaving cannot arise there.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.catalog.service import ProductChanges
from mercato.catalog.store import ProductRepository
from mercato.customers import CustomerInactive
from mercato.customers.store import CustomerRepository
from mercato.kernel.clock import utcnow
from mercato.kernel.values import Quantity
from mercato.orders import Order
from mercato.orders.domain import CheckoutAbandoned, ProductInfo
from mercato.orders.service import Checkout
from mercato.orders.store import OrderRepository
from mercato.payments import SUCCESS_CARD, ChargeResult, Outcome, PaymentMeans
from mercato.platform import outbox
from mercato.platform.db import sql
from mercato.platform.security import Principal
from mercato.platform.uow import UnitOfWork
from tests.integration.helpers import customer, draft, outbox_rows, product, reservation_rows
from tests.integration.helpers import stock as stock_of

pytestmark = pytest.mark.anyio

_LOCK_WAITERS = sql(
    sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
)


async def _waiting_for_a_lock(container: Container) -> None:
    """Until some other session of this database waits for a row lock."""
    async with container.db.connection() as conn:
        for _ in range(200):
            if await conn.fetchval(_LOCK_WAITERS):
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the command never waited for the lock")


@pytest.fixture
def postgres(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLite serialises writers; no transaction waits for a row lock")


@pytest.mark.usefixtures("postgres")
async def test_a_line_added_while_waiting_for_the_order_keeps_the_holders_line(
    container: Container,
) -> None:
    owner = await customer(container)
    first, second = await product(container, stock=5), await product(container, stock=5)
    order = await draft(container, owner, {})

    async with container.db.transaction() as holder:
        orders = UnitOfWork(holder).repository(OrderRepository)
        locked = await orders.get(order.id, lock=True)
        assert locked is not None
        waiting = asyncio.create_task(
            container.orders.add_line(owner, order.id, product_id=second.id, quantity=2)
        )
        await _waiting_for_a_lock(container)
        info = ProductInfo(first.id, first.sku, first.name, first.price, first.weight_grams)
        locked.add_line(info, Quantity(1), now=utcnow())
        await orders.save(locked)  # raises OrderConflict if the guarded update found no row

    after = await waiting
    assert sorted(after.lines) == sorted([first.id, second.id])
    stored = await container.orders.get(owner, order.id)
    assert {pid: ln.quantity.value for pid, ln in stored.lines.items()} == {
        first.id: 1,
        second.id: 2,
    }
    assert stored.version == order.version + 2


@pytest.mark.usefixtures("postgres")
async def test_a_product_edit_that_waited_applies_on_top_without_a_conflict(
    container: Container,
) -> None:
    item = await product(container, stock=5, price=1000)

    async with container.db.transaction() as holder:
        products = UnitOfWork(holder).repository(ProductRepository)
        locked = await products.get(item.id, lock=True)
        waiting = asyncio.create_task(
            container.catalog.update_product(
                item.id, ProductChanges(price_amount=1500), expected_version=None
            )
        )
        await _waiting_for_a_lock(container)
        locked.update(now=utcnow(), name="Renamed while locked")
        await products.save(locked)  # guarded by the version it was loaded with

    after = await waiting
    assert (after.name, after.price.amount) == ("Renamed while locked", 1500)


@pytest.mark.usefixtures("postgres")
async def test_lines_changed_while_a_placement_waits_for_the_order_are_the_lines_it_places(
    container: Container,
) -> None:
    # The order is locked and its lines read in one statement (one snapshot): here that
    # snapshot holds lines the holder has rewritten by the time the lock is granted.
    owner = await customer(container)
    first, second = await product(container, stock=10), await product(container, stock=10)
    order = await draft(container, owner, {first.id: 1, second.id: 1})

    async with container.db.transaction() as holder:
        orders = UnitOfWork(holder).repository(OrderRepository)
        locked = await orders.get(order.id, lock=True)
        assert locked is not None
        waiting = asyncio.create_task(
            container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
        )
        await _waiting_for_a_lock(container)
        locked.set_quantity(first.id, Quantity(3), now=utcnow())
        locked.remove_line(second.id, now=utcnow())
        await orders.save(locked)

    placed = await waiting
    assert {pid: ln.quantity.value for pid, ln in placed.lines.items()} == {first.id: 3}
    assert placed.totals.subtotal.amount == 3 * first.price.amount
    assert await stock_of(container, first.id) == (7, 0, 3)
    assert await stock_of(container, second.id) == (10, 0, 0)


async def _checkout(container: Container, stock: int) -> tuple[Principal, Order, Checkout, str]:
    owner = await customer(container)
    item = await product(container, stock=stock)
    order = await draft(container, owner, {item.id: 1})
    begun = await container.orders.begin_checkout(owner, order.id, PaymentMeans(SUCCESS_CARD), None)
    return owner, order, begun, item.id


@pytest.mark.usefixtures("postgres")
async def test_a_settle_that_waited_for_the_sweeper_writes_nothing_over_its_settlement(
    container: Container,
) -> None:
    # The request's settle is one statement guarded by the order's version. Here the sweeper
    # gives the checkout up (payment failed, stock released) while that statement waits for
    # the order: it must then write nothing (no second stock movement, no placed order).
    owner, order, begun, item_id = await _checkout(container, stock=3)

    async with container.db.transaction() as holder:
        uow = UnitOfWork(holder)
        orders = uow.repository(OrderRepository)
        locked = await orders.get(order.id, lock=True)
        assert locked is not None
        waiting = asyncio.create_task(container.orders.pay(begun, PaymentMeans(SUCCESS_CARD)))
        await _waiting_for_a_lock(container)
        expired = ChargeResult(Outcome.ERROR, reason="reservation_expired")
        await container.payments.settle(uow, begun.payment.id, expired)
        await container.catalog.release_reservation(uow, order.id, expired=True)
        locked.abort_checkout(now=utcnow())
        await orders.save(locked)
        await outbox.append(holder, uow.collect_events())

    with pytest.raises(CheckoutAbandoned):  # captured too late: refunded, not placed
        await waiting
    after = await container.orders.get(owner, order.id)
    assert (after.status.value, after.in_checkout, after.version) == (
        "draft",
        False,
        order.version + 2,
    )
    assert await stock_of(container, item_id) == (3, 0, 0)
    assert [p.status.value for p in await container.payments.list_for_order(order.id)] == ["failed"]
    events = [r["event_type"] for r in await outbox_rows(container.db, order.id)]
    assert "OrderPlaced" not in events
    assert [r["state"] for r in await reservation_rows(container.db, order.id)] == ["released"]


@pytest.mark.usefixtures("postgres")
async def test_a_settle_that_waited_for_a_lock_holder_who_changed_nothing_places_the_order(
    container: Container,
) -> None:
    owner, order, begun, item_id = await _checkout(container, stock=3)

    async with container.db.transaction() as holder:
        locked = await UnitOfWork(holder).repository(OrderRepository).get(order.id, lock=True)
        assert locked is not None
        waiting = asyncio.create_task(container.orders.pay(begun, PaymentMeans(SUCCESS_CARD)))
        await _waiting_for_a_lock(container)

    placed = await waiting
    assert (placed.status.value, placed.version) == ("placed", order.version + 2)
    stored = await container.orders.get(owner, order.id)
    assert (stored.status.value, stored.version, stored.in_checkout) == (
        "placed",
        placed.version,
        False,
    )
    assert await stock_of(container, item_id) == (2, 0, 1)
    assert [p.status.value for p in await container.payments.list_for_order(order.id)] == [
        "captured"
    ]
    events = [r["event_type"] for r in await outbox_rows(container.db, order.id)]
    assert events.count("OrderPlaced") == 1
    assert [r["state"] for r in await reservation_rows(container.db, order.id)] == ["committed"]


@pytest.mark.usefixtures("postgres")
async def test_a_placement_that_waited_for_a_deactivation_is_refused_and_reserves_nothing(
    container: Container,
) -> None:
    # Phase 1 locks the order and share-locks the customer in one statement; the customer's
    # state it reads must be the one the deactivation committed, not the statement's snapshot.
    owner = await customer(container)
    item = await product(container, stock=5)
    order = await draft(container, owner, {item.id: 2})

    async with container.db.transaction() as holder:
        customers = UnitOfWork(holder).repository(CustomerRepository)
        account = await customers.get(owner.user_id, lock=True)
        waiting = asyncio.create_task(
            container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
        )
        await _waiting_for_a_lock(container)
        account.deactivate()
        await customers.save(account)

    with pytest.raises(CustomerInactive):
        await waiting
    assert await stock_of(container, item.id) == (5, 0, 0)
    assert await container.payments.list_for_order(order.id) == []
    stored = await container.orders.get(owner, order.id)
    assert (stored.status.value, stored.in_checkout, stored.version) == (
        "draft",
        False,
        order.version,
    )
