"""Reserving every line of an order in one statement (PostgreSQL) keeps the catalog's promises:
products are locked in product-id order, so checkouts that share products never deadlock, and
the guarded update never sells a unit twice; a refused line leaves nothing reserved."""

from __future__ import annotations

import asyncio
from collections import Counter

import anyio
import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.catalog import OutOfStock
from mercato.orders import Status
from mercato.payments import SUCCESS_CARD
from mercato.platform.db import sql
from tests.integration.helpers import (
    assert_stock_balances,
    customer,
    draft,
    product,
    reservation_rows,
    stock,
)

pytestmark = pytest.mark.anyio

UNITS = 6
SHOPPERS = 24
_DEADLOCKS = sql(
    sa.select(sa.column("deadlocks"))
    .select_from(sa.table("pg_stat_database", sa.column("deadlocks"), sa.column("datname")))
    .where(sa.column("datname") == sa.func.current_database())
)


async def _deadlocks(container: Container) -> int:
    await asyncio.sleep(1.2)  # backends report their statistics at most once a second
    async with container.db.connection() as conn:
        await conn.execute_text("SELECT pg_stat_clear_snapshot()")
        return int(await conn.fetchval(_DEADLOCKS))


async def test_checkouts_sharing_products_crosswise_neither_deadlock_nor_oversell(
    container: Container, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite runs one writer at a time; the race needs PostgreSQL's row locks")
    items = [await product(container, stock=UNITS) for _ in range(3)]
    owners = [await customer(container) for _ in range(4)]
    orders = []
    for n in range(SHOPPERS):
        # the same three products, listed in rotating order, one to three units of each
        ids = [items[(n + k) % 3].id for k in range(3)]
        owner = owners[n % len(owners)]
        orders.append((owner, await draft(container, owner, {pid: 1 + n % 2 for pid in ids})))
    before = await _deadlocks(container)
    with anyio.fail_after(60):
        outcomes = await asyncio.gather(
            *(container.orders.place(o, order.id, card_number=SUCCESS_CARD) for o, order in orders),
            return_exceptions=True,
        )
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, OutOfStock) for o in refused), refused
    placed = [o for o in outcomes if not isinstance(o, BaseException)]
    assert Counter(o.status for o in placed) == {Status.PLACED: len(placed)}
    sold = sum(o.lines[items[0].id].quantity.value for o in placed)
    for item in items:
        available, reserved, units_sold = await stock(container, item.id)
        assert reserved == 0
        assert units_sold == sold <= UNITS
        assert available == UNITS - sold
        await assert_stock_balances(container, item.id)
    for (_, order), outcome in zip(orders, outcomes, strict=True):
        held = {r["state"] for r in await reservation_rows(container.db, order.id)}
        assert held == (set() if isinstance(outcome, BaseException) else {"committed"})
    assert await _deadlocks(container) == before


async def test_a_refused_line_in_the_middle_leaves_nothing_reserved(container: Container) -> None:
    first, short, last = [await product(container, stock=s) for s in (5, 1, 5)]
    owner = await customer(container)
    order = await draft(container, owner, {first.id: 2, short.id: 2, last.id: 2})
    with pytest.raises(OutOfStock) as refused:
        await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert refused.value.data["product_id"] == short.id
    assert [await stock(container, p.id) for p in (first, short, last)] == [
        (5, 0, 0),
        (1, 0, 0),
        (5, 0, 0),
    ]
    assert await reservation_rows(container.db, order.id) == []
    assert (await container.orders.get(owner, order.id)).status is Status.DRAFT
