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
from mercato.kernel.clock import utcnow
from mercato.kernel.values import Quantity
from mercato.orders.domain import ProductInfo
from mercato.orders.store import OrderRepository
from mercato.platform.db import sql
from mercato.platform.uow import UnitOfWork
from tests.integration.helpers import customer, draft, product

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
