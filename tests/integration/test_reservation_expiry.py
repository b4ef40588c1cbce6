"""The sweeper asks only for active reservations that expired, and an index of active
reservations answers it: a settled reservation leaves that index, so settling three lines
writes no entry there and the index stays as small as the open checkouts, however many
reservations were ever made."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.catalog.store import reservations
from mercato.catalog.store.stock_store import _EXPIRED_ORDERS
from mercato.kernel.clock import utcnow
from mercato.kernel.ids import new_id
from mercato.platform.db import sql
from tests.integration.helpers import plan_access, product

pytestmark = pytest.mark.anyio

_INSERT = sql(
    sa.insert(reservations).values({c.name: sa.bindparam(c.name) for c in reservations.c})
)


def _row(order_id: str, product_id: str, state: str, *, minutes: int) -> dict[str, object]:
    now = utcnow()
    return {
        "id": new_id(),
        "order_id": order_id,
        "product_id": product_id,
        "quantity": 1,
        "state": state,
        "expires_at": now + timedelta(minutes=minutes),
        "created_at": now,
    }


async def _product_id(container: Container) -> str:
    return (await product(container, stock=10)).id


async def test_only_active_reservations_that_expired_are_swept(
    container: Container, backend: str
) -> None:
    product_id = await _product_id(container)
    expired, live, settled, released = (new_id() for _ in range(4))
    rows = [
        _row(expired, product_id, "active", minutes=-1),
        _row(live, product_id, "active", minutes=15),
        _row(settled, product_id, "committed", minutes=-1),
        _row(released, product_id, "released", minutes=-1),
    ]
    async with container.db.transaction() as conn:
        await conn.executemany(_INSERT, rows)
        found = [r["order_id"] for r in await conn.fetch(_EXPIRED_ORDERS, now=utcnow(), limit=1000)]
    assert expired in found
    assert {live, settled, released}.isdisjoint(found)


async def test_the_sweeper_reads_an_index_that_holds_only_active_reservations(
    container: Container, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL's planner and index predicates")
    product_id = await _product_id(container)
    settled = [_row(new_id(), product_id, "committed", minutes=-1) for _ in range(2000)]
    async with container.db.connection() as conn:
        await conn.executemany(_INSERT, settled)
        await conn.execute_text("ANALYZE catalog_reservations")
        predicate = await conn.raw.fetchval(
            "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i"
            " WHERE i.indexrelid = 'ix_catalog_reservations_active'::regclass"
        )
        compiled = _EXPIRED_ORDERS.compiled("postgresql")
        plan = await conn.raw.fetchval(
            "EXPLAIN (FORMAT JSON) " + compiled.text, *compiled.args({"now": utcnow(), "limit": 50})
        )
    assert predicate == "((state)::text = 'active'::text)"
    assert plan_access(json.loads(plan), "catalog_reservations") == {
        "ix_catalog_reservations_active"
    }
