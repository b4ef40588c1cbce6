"""Many shoppers racing for little stock on PostgreSQL: nobody oversells, nothing goes negative."""

from __future__ import annotations

import asyncio
from collections import Counter

import anyio
import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.catalog import OutOfStock
from mercato.catalog.store import products, reservations
from mercato.orders import Status
from mercato.payments import SUCCESS_CARD
from mercato.payments import Status as PaymentStatus
from mercato.platform.db import sql
from tests.integration.helpers import assert_stock_balances, customer, draft, product, stock

pytestmark = pytest.mark.anyio

SHOPPERS = 30
UNITS = 10
_COUNTERS = sql(
    sa.select(products.c.available, products.c.reserved, products.c.sold).where(
        products.c.id == sa.bindparam("id")
    )
)
_HOLDS = sql(
    sa.select(reservations.c.state, sa.func.sum(reservations.c.quantity).label("units"))
    .where(reservations.c.product_id == sa.bindparam("id"))
    .group_by(reservations.c.state)
)


async def test_thirty_concurrent_checkouts_for_ten_units_sell_exactly_ten(
    container: Container, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite runs one writer at a time; the race needs PostgreSQL's row locks")
    widget = await product(container, stock=UNITS)
    shoppers = [await customer(container) for _ in range(6)]
    orders = [
        (owner, await draft(container, owner, {widget.id: 1}))
        for owner in shoppers
        for _ in range(SHOPPERS // len(shoppers))
    ]
    seen: list[tuple[int, int, int]] = []
    racing = True

    async def watch() -> None:
        async with container.db.connection() as conn:
            while racing:
                row = await conn.fetchrow(_COUNTERS, id=widget.id)
                assert row is not None
                seen.append((row["available"], row["reserved"], row["sold"]))
                await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    with anyio.fail_after(30):
        outcomes = await asyncio.gather(
            *(
                container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
                for owner, order in orders
            ),
            return_exceptions=True,
        )
    racing = False
    await watcher

    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, OutOfStock) for o in refused), refused
    assert Counter(o.status for o in outcomes if not isinstance(o, BaseException)) == {
        Status.PLACED: UNITS
    }
    assert await stock(container, widget.id) == (0, 0, UNITS)
    assert seen, "the watcher saw the race"
    for available, reserved, sold in seen:
        assert min(available, reserved, sold) >= 0
        assert available + reserved + sold == UNITS
    async with container.db.connection() as conn:
        holds = {r["state"]: r["units"] for r in await conn.fetch(_HOLDS, id=widget.id)}
    assert holds == {"committed": UNITS}
    statuses = Counter()
    for owner, order in orders:
        stored = await container.orders.get(owner, order.id)
        statuses[stored.status] += 1
        assert stored.checkout_payment_id is None
        for payment in await container.orders.payments(owner, order.id):
            assert payment.status is PaymentStatus.CAPTURED
            assert stored.status is Status.PLACED
    assert statuses == {Status.PLACED: UNITS, Status.DRAFT: SHOPPERS - UNITS}
    await assert_stock_balances(container, widget.id)
