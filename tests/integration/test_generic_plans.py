"""Phase 1 of placing runs its prepared statements on generic plans (PostgreSQL).

PostgreSQL re-plans a prepared statement for each execution while the plan made for the
values looks cheaper than the generic one; the catalog's reservation, which takes its lines as
arrays, always looked cheaper so, and was planned on every placement. These tests hold the
transaction's setting to what it promises: generic plans inside, nothing left behind after a
commit or a rollback, on a pool of one connection so the same session is looked at each time.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mercato.payments import SUCCESS_CARD
from mercato.platform.db import sql
from mercato.platform.db_postgres import PostgresDatabase
from tests.conftest import make_settings, running
from tests.integration.helpers import customer, draft, product

pytestmark = pytest.mark.anyio

_PLANS = sql(
    sa.text(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
        " WHERE statement LIKE '%WITH wanted AS%'"
    )
)
_MODE = sql(sa.text("SELECT current_setting('plan_cache_mode')"))
_IN_TRANSACTION = sql(sa.text("SELECT now() <> statement_timestamp()"))


async def test_the_reservation_is_planned_once_however_many_orders_are_placed(
    database_url: str, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite has no plan cache to steer")
    settings = make_settings(database_url, database_pool_size=1)
    async with running(settings) as container:
        owner = await customer(container)
        items = [await product(container, stock=50) for _ in range(3)]
        for _ in range(8):  # past the five executions PostgreSQL plans for the values first
            order = await draft(container, owner, {item.id: 1 for item in items})
            placed = await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
            assert placed.status.value == "placed"
        async with container.db.connection() as conn:  # the pool's only connection
            plans = await conn.fetch(_PLANS)
            mode = await conn.fetchval(_MODE)
    assert sum(row["custom_plans"] for row in plans) == 0, plans
    assert sum(row["generic_plans"] for row in plans) >= 8, plans
    assert mode == "auto"  # outside phase 1 the session plans as it always did


async def test_generic_plans_end_with_their_transaction_committed_or_rolled_back(
    database_url: str, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite has no plan cache to steer")
    db = PostgresDatabase(database_url, pool_size=1, timeout=5)
    await db.connect()
    try:
        async with db.transaction(generic_plans=True) as conn:
            assert await conn.fetchval(_MODE) == "force_generic_plan"
            assert await conn.fetchval(_IN_TRANSACTION) is True  # now() is the BEGIN
        async with db.connection() as conn:
            assert await conn.fetchval(_MODE) == "auto"
        with pytest.raises(ZeroDivisionError):
            await _fail_after_a_write(db)
        async with db.connection() as conn:
            assert await conn.fetchval(_MODE) == "auto"
            assert (
                await conn.fetchval(sql(sa.text("SELECT to_regclass('phase_one_probe')"))) is None
            )
        async with db.transaction() as conn:
            assert await conn.fetchval(_MODE) == "auto"
    finally:
        await db.close()


async def _fail_after_a_write(db: PostgresDatabase) -> None:
    async with db.transaction(generic_plans=True) as conn:
        await conn.execute_text("CREATE TEMPORARY TABLE phase_one_probe (n int)")
        raise ZeroDivisionError
