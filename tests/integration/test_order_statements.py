"""How many SQL statements the hot path runs: placing an order must not grow a round trip.

Every statement a unit of work sends is counted by wrapping the database the transactor uses
(the real driver still runs each one). The budget is what placing an order cost before the
orders module moved to repositories on the unit of work; a refactor may lower it, never raise
it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from mercato.bootstrap import Container
from mercato.payments import SUCCESS_CARD
from mercato.platform.db import Database, Row, Statement
from tests.integration.helpers import customer, draft, product

pytestmark = pytest.mark.anyio

# Three lines at unchanged prices. Begin: lock the order, read its lines, check the customer,
# three guarded stock updates, the reservation rows, the payment, the order update. Settle: lock
# the order, read its lines, the payment update, the reservations and the stock sold, the order
# update, the outbox. Measured on both databases before the refactor: 16.
PLACEMENT_BUDGET = 16


class CountingConnection:
    """A connection that records the SQL of every statement it sends."""

    def __init__(self, conn: Any, sent: list[str]) -> None:
        self._conn = conn
        self._sent = sent
        self.dialect = conn.dialect

    def _note(self, stmt: Statement) -> None:
        self._sent.append(stmt.compiled(self.dialect).text.split("\n")[0][:80])

    async def fetch(self, stmt: Statement, /, **params: Any) -> list[Row]:
        self._note(stmt)
        return await self._conn.fetch(stmt, **params)  # type: ignore[no-any-return]

    async def fetchrow(self, stmt: Statement, /, **params: Any) -> Row | None:
        self._note(stmt)
        return await self._conn.fetchrow(stmt, **params)  # type: ignore[no-any-return]

    async def fetchval(self, stmt: Statement, /, **params: Any) -> Any:
        self._note(stmt)
        return await self._conn.fetchval(stmt, **params)

    async def execute(self, stmt: Statement, /, **params: Any) -> int:
        self._note(stmt)
        return await self._conn.execute(stmt, **params)  # type: ignore[no-any-return]

    async def executemany(self, stmt: Statement, rows: Iterable[Mapping[str, Any]]) -> None:
        self._note(stmt)
        await self._conn.executemany(stmt, rows)

    async def execute_text(self, text: str) -> None:
        self._sent.append(text[:80])
        await self._conn.execute_text(text)


class CountingDatabase:
    """The application's database, its connections wrapped in :class:`CountingConnection`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.dialect = db.dialect
        self.url = db.url
        self.sent: list[str] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[CountingConnection]:
        async with self._db.transaction() as conn:
            yield CountingConnection(conn, self.sent)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[CountingConnection]:
        async with self._db.connection() as conn:
            yield CountingConnection(conn, self.sent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


async def test_placing_an_order_runs_no_more_statements_than_before(
    container: Container,
) -> None:
    owner = await customer(container)
    items = [await product(container, stock=10) for _ in range(3)]
    order = await draft(container, owner, {item.id: 1 + n for n, item in enumerate(items)})
    counting = CountingDatabase(container.db)
    container.transact.db = counting  # type: ignore[assignment]
    try:
        placed = await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    finally:
        container.transact.db = counting._db
    assert placed.status.value == "placed"
    assert len(counting.sent) <= PLACEMENT_BUDGET, "\n".join(counting.sent)
