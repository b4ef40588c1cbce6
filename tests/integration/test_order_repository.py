"""The order repository on a real database: guarded saves, lines written only when they changed,
and events collected on commit without a hand-called collect."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.kernel.clock import utcnow
from mercato.kernel.values import Quantity
from mercato.orders.domain import OrderConflict, ProductInfo
from mercato.orders.store import OrderRepository, orders
from mercato.platform.db import sql
from mercato.platform.uow import UnitOfWork, UnsavedChanges
from tests.integration.counting import CountingConnection
from tests.integration.helpers import ADDRESS, STAFF, customer, draft, outbox_rows, product

pytestmark = pytest.mark.anyio

_BUMP = sql(
    sa.update(orders).where(orders.c.id == sa.bindparam("id")).values(version=orders.c.version + 1)
)


async def test_a_save_after_another_writer_moved_the_row_is_a_conflict(
    container: Container,
) -> None:
    owner = await customer(container)
    order = await draft(container, owner, {})
    async with container.db.transaction() as conn:
        repo = UnitOfWork(conn).repository(OrderRepository)
        loaded = await repo.get(order.id)
        assert loaded is not None
        await conn.execute(_BUMP, id=order.id)  # another writer committed first
        loaded.set_addresses(ADDRESS, now=utcnow())
        with pytest.raises(OrderConflict) as exc:
            await repo.save(loaded)
        assert exc.value.data["current_version"] == order.version + 1
    stored = await container.orders.get(owner, order.id)
    assert stored.version == order.version + 1


async def test_a_save_rewrites_the_lines_only_when_they_changed(container: Container) -> None:
    owner = await customer(container)
    first, second = await product(container, stock=5), await product(container, stock=5)
    order = await draft(container, owner, {first.id: 1})
    sent: list[str] = []
    async with container.db.transaction() as raw:
        conn = CountingConnection(raw, sent)
        repo = UnitOfWork(conn).repository(OrderRepository)  # type: ignore[arg-type]
        loaded = await repo.get(order.id, lock=True)
        assert loaded is not None
        loaded.apply_discount("WELCOME10", 10, now=utcnow())
        sent.clear()
        await repo.save(loaded)
        assert [s.split()[0] for s in sent] == ["UPDATE"]  # the order row, not its lines
        info = ProductInfo(second.id, second.sku, second.name, second.price, second.weight_grams)
        loaded.add_line(info, Quantity(2), now=utcnow())
        sent.clear()
        await repo.save(loaded)
        assert [s.split()[0] for s in sent] == ["UPDATE", "DELETE", "INSERT"]
    stored = await container.orders.get(owner, order.id)
    assert {pid: ln.quantity.value for pid, ln in stored.lines.items()} == {
        first.id: 1,
        second.id: 2,
    }
    assert stored.discount_code == "WELCOME10"


async def test_events_of_a_saved_order_reach_the_outbox_on_commit(container: Container) -> None:
    owner = await customer(container)
    order = await draft(container, owner, {})

    async def cancel(uow: UnitOfWork) -> None:
        repo = uow.repository(OrderRepository)
        loaded = await repo.get(order.id, lock=True)
        assert loaded is not None
        loaded.cancel(reason="", cancelled_by=STAFF.role.value, now=utcnow())
        await repo.save(loaded)

    await container.transact(cancel)
    assert [r["event_type"] for r in await outbox_rows(container.db, order.id)] == [
        "OrderCancelled"
    ]


async def test_an_order_changed_but_not_saved_is_refused_and_rolled_back(
    container: Container,
) -> None:
    owner = await customer(container)
    order = await draft(container, owner, {})

    async def forget(uow: UnitOfWork) -> None:
        loaded = await uow.repository(OrderRepository).get(order.id, lock=True)
        assert loaded is not None
        loaded.cancel(reason="", cancelled_by="staff", now=utcnow())

    with pytest.raises(UnsavedChanges):
        await container.transact(forget)
    assert (await container.orders.get(owner, order.id)).status.value == "draft"
    assert await outbox_rows(container.db, order.id) == []
