"""SQLite through aiosqlite: the embedded default for development and small shops.

One connection per process, serialised by a lock; every write transaction starts with
``BEGIN IMMEDIATE`` so concurrent processes queue on SQLite's own lock (busy timeout) instead
of failing half-way. WAL mode lets readers in other processes proceed during writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from mercato.platform.db import (
    DatabaseUnavailable,
    Row,
    Statement,
    TransientError,
    UniqueViolation,
    UnstorableText,
)


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        return UniqueViolation(str(exc))
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return TransientError(str(exc))
    return exc


def _storable(args: list[Any]) -> list[Any]:
    """Refuse NUL characters as PostgreSQL does, so both databases accept the same text."""
    for value in args:
        if isinstance(value, str) and "\x00" in value:
            raise UnstorableText("text contains a NUL character")
    return args


class SqliteConnection:
    """An aiosqlite connection speaking the :class:`mercato.platform.db.Connection` protocol."""

    dialect = "sqlite"
    __slots__ = ("raw",)

    def __init__(self, raw: aiosqlite.Connection) -> None:
        self.raw = raw

    async def _run(self, stmt: Statement, params: Mapping[str, Any]) -> tuple[list[Row], int]:
        c = stmt.compiled("sqlite")
        args = _storable(c.args(params))
        try:
            async with self.raw.execute(c.text, args) as cursor:
                rows = await cursor.fetchall()
                names = [d[0] for d in cursor.description or ()]
                count = cursor.rowcount
        except sqlite3.Error as exc:
            translated = _translate(exc)
            raise translated from exc
        result: list[Row] = []
        for raw in rows:
            row = dict(zip(names, raw, strict=True))
            for key, convert in c.converters:
                if key in row:
                    row[key] = convert(row[key])
            result.append(row)
        return result, count

    async def fetch(self, stmt: Statement, /, **params: Any) -> list[Row]:
        return (await self._run(stmt, params))[0]

    async def fetchrow(self, stmt: Statement, /, **params: Any) -> Row | None:
        rows = (await self._run(stmt, params))[0]
        return rows[0] if rows else None

    async def fetchval(self, stmt: Statement, /, **params: Any) -> Any:
        row = await self.fetchrow(stmt, **params)
        return None if row is None else next(iter(row.values()))

    async def execute(self, stmt: Statement, /, **params: Any) -> int:
        return (await self._run(stmt, params))[1]

    async def executemany(self, stmt: Statement, rows: Iterable[Mapping[str, Any]]) -> None:
        c = stmt.compiled("sqlite")
        try:
            await self.raw.executemany(c.text, [_storable(c.args(row)) for row in rows])
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def execute_text(self, text: str) -> None:
        await self.raw.execute(text)


class SqliteDatabase:
    """One SQLite connection in WAL mode, shared by the process under a lock."""

    dialect = "sqlite"

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url
        self.path = url.removeprefix("sqlite:///")
        self._timeout = timeout
        self._raw: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        """Open the file (its folder must exist) and set the pragmas mercato relies on."""
        if self._raw is not None:
            return
        if self.path != ":memory:" and not Path(self.path).parent.exists():
            raise DatabaseUnavailable(f"folder of {self.path} does not exist")
        self._raw = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
            f"PRAGMA busy_timeout={int(self._timeout * 1000)}",
        ):
            await self._raw.execute(pragma)

    async def close(self) -> None:
        """Close the connection."""
        if self._raw is not None:
            await self._raw.close()
            self._raw = None

    def _conn(self) -> aiosqlite.Connection:
        if self._raw is None:
            raise DatabaseUnavailable("database is not connected")
        return self._raw

    @asynccontextmanager
    async def transaction(self, *, generic_plans: bool = False) -> AsyncIterator[SqliteConnection]:
        """A write transaction (BEGIN IMMEDIATE): committed on success, rolled back on error.

        ``generic_plans`` is PostgreSQL's concern; SQLite has no plan cache to steer."""
        async with self._lock:
            raw = self._conn()
            try:
                await raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _translate(exc) from exc
            try:
                yield SqliteConnection(raw)
            except BaseException:
                await raw.execute("ROLLBACK")
                raise
            await raw.execute("COMMIT")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[SqliteConnection]:
        """The connection in autocommit mode, for reads."""
        async with self._lock:
            yield SqliteConnection(self._conn())

    async def ping(self) -> None:
        """Raise DatabaseUnavailable unless the file answers a trivial query."""
        try:
            async with self._lock:
                await self._conn().execute("SELECT 1")
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(str(exc)) from exc
