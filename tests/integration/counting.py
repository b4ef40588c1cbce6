"""A database wrapper that records every statement its connections send (the real driver still
runs each one): for tests that hold a path to a number of round trips."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from mercato.platform.db import Database, Row, Statement


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
        self.transactions = 0  # explicit ones: each costs a BEGIN and a COMMIT round trip

    @asynccontextmanager
    async def transaction(
        self, *, generic_plans: bool = False
    ) -> AsyncIterator[CountingConnection]:
        self.transactions += 1
        async with self._db.transaction(generic_plans=generic_plans) as conn:
            yield CountingConnection(conn, self.sent)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[CountingConnection]:
        async with self._db.connection() as conn:
            yield CountingConnection(conn, self.sent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)
