"""PostgreSQL through asyncpg: a pool, transactions, and driver errors mapped to ours."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from mercato.platform.db import (
    DatabaseUnavailable,
    OutOfRange,
    Row,
    Statement,
    TransientError,
    UniqueViolation,
    UnstorableText,
)

_TRANSIENT = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    # a pooled connection the server ended (restart, failover) mid-operation
    asyncpg.InternalClientError,
)


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(exc.constraint_name or str(exc))
    if isinstance(exc, _TRANSIENT):
        return TransientError(str(exc))
    if isinstance(exc, _UNAVAILABLE):
        return DatabaseUnavailable(f"database unavailable: {type(exc).__name__}")
    if isinstance(
        exc, (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)
    ):
        return UnstorableText(str(exc))
    if isinstance(exc, asyncpg.NumericValueOutOfRangeError):
        return OutOfRange(str(exc))
    return exc


class PgConnection:
    """An asyncpg connection speaking the :class:`mercato.platform.db.Connection` protocol."""

    dialect = "postgresql"
    __slots__ = ("raw",)

    def __init__(self, raw: asyncpg.Connection) -> None:
        self.raw = raw

    async def fetch(self, stmt: Statement, /, **params: Any) -> list[Row]:
        c = stmt.compiled("postgresql")
        try:
            return await self.raw.fetch(c.text, *c.args(params))  # type: ignore[no-any-return]
        except Exception as exc:
            raise _translate(exc) from exc

    async def fetchrow(self, stmt: Statement, /, **params: Any) -> Row | None:
        c = stmt.compiled("postgresql")
        try:
            return await self.raw.fetchrow(c.text, *c.args(params))  # type: ignore[no-any-return]
        except Exception as exc:
            raise _translate(exc) from exc

    async def fetchval(self, stmt: Statement, /, **params: Any) -> Any:
        c = stmt.compiled("postgresql")
        try:
            return await self.raw.fetchval(c.text, *c.args(params))
        except Exception as exc:
            raise _translate(exc) from exc

    async def execute(self, stmt: Statement, /, **params: Any) -> int:
        c = stmt.compiled("postgresql")
        try:
            status: str = await self.raw.execute(c.text, *c.args(params))
        except Exception as exc:
            raise _translate(exc) from exc
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, stmt: Statement, rows: Iterable[Mapping[str, Any]]) -> None:
        c = stmt.compiled("postgresql")
        args = [c.args(row) for row in rows]
        if args:
            try:
                await self.raw.executemany(c.text, args)
            except Exception as exc:
                raise _translate(exc) from exc

    async def execute_text(self, text: str) -> None:
        await self.raw.execute(text)


async def _no_reset(_: asyncpg.Connection) -> None:
    """mercato never changes session state on pooled connections, so skip RESET ALL."""


_BEGIN_GENERIC = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan"


@asynccontextmanager
async def _generic_plans(raw: asyncpg.Connection) -> AsyncIterator[None]:
    """BEGIN with generic plans for the transaction, then COMMIT or ROLLBACK, as asyncpg's own
    transaction does it. A connection whose ROLLBACK fails is closed rather than pooled: with
    no reset on release, it would go back to the pool inside a transaction."""
    await raw.execute(_BEGIN_GENERIC)  # two statements in one simple-query round trip
    try:
        yield
    except BaseException:
        try:
            await raw.execute("ROLLBACK")
        except BaseException:
            raw.terminate()
            raise
        raise
    await raw.execute("COMMIT")


class PostgresDatabase:
    """A pool of asyncpg connections."""

    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int, timeout: float) -> None:
        self.url = url
        self._pool_size = pool_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        self._ping_conn: asyncpg.Connection | None = None
        self._ping_lock = asyncio.Lock()

    async def connect(self) -> None:
        """Open the pool (lazily: connections are made as needed); a no-op when open."""
        if self._pool is not None:
            return
        self._pool = asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=self._pool_size,
            timeout=self._timeout,
            command_timeout=30,
            reset=_no_reset,
            server_settings={"application_name": "mercato"},
        )
        await self._pool

    async def close(self) -> None:
        """Close the pool, waiting briefly for connections in use."""
        if self._ping_conn is not None:
            self._ping_conn.terminate()
            self._ping_conn = None
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=self._timeout)
            except TimeoutError:
                self._pool.terminate()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The underlying pool (for the few platform parts that need raw access)."""
        if self._pool is None:
            raise DatabaseUnavailable("database is not connected")
        return self._pool

    @asynccontextmanager
    async def transaction(self, *, generic_plans: bool = False) -> AsyncIterator[PgConnection]:
        """A connection inside one transaction: committed on success, rolled back on error.

        Its errors, BEGIN's and COMMIT's among them, are translated by :meth:`connection`.
        With ``generic_plans`` the transaction's prepared statements run their generic plans
        (see :func:`mercato.platform.db.run_in_transaction`); the setting is sent with BEGIN,
        in the same round trip, and ends with the transaction.
        """
        async with self.connection() as conn:
            if not generic_plans:
                async with conn.raw.transaction():
                    yield conn
                return
            async with _generic_plans(conn.raw):
                yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[PgConnection]:
        """A connection in autocommit mode, for reads; driver errors become ours."""
        try:
            async with self.pool.acquire(timeout=self._timeout) as raw:
                yield PgConnection(raw)
        except Exception as exc:
            translated = _translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    async def ping(self) -> None:
        """Raise DatabaseUnavailable unless a trivial query succeeds quickly.

        The probes call this every few seconds. It uses one connection of its own, outside the
        pool, so a pool busy with real work never makes the replica look unready (which would
        shed load exactly when it is busiest), and a lost connection is made again next time.
        """
        async with self._ping_lock:
            try:
                if self._ping_conn is None or self._ping_conn.is_closed():
                    self._ping_conn = await asyncpg.connect(
                        self._dsn,
                        timeout=self._timeout,
                        server_settings={"application_name": "mercato-probe"},
                    )
                await self._ping_conn.fetchval("SELECT 1", timeout=self._timeout)
            except Exception as exc:
                if self._ping_conn is not None:
                    self._ping_conn.terminate()
                    self._ping_conn = None
                raise DatabaseUnavailable(
                    f"database unavailable: {type(exc).__name__}: {exc}".rstrip(": ")
                ) from exc
