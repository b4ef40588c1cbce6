"""A thin, fast database layer over the drivers (asyncpg on PostgreSQL, aiosqlite on SQLite).

SQLAlchemy Core ``Table`` objects describe the schema once (Alembic and ``alembic check`` read
them). Statements are built with Core too, wrapped in :func:`sql`, compiled once per dialect on
first use and then executed by the driver directly: no ORM, no identity map, no per-call
compilation. ARCHITECTURE.md gives the measurements behind this choice.

Rows come back as read-only mappings keyed by column label. SQLite has no native timestamp or
boolean type, so for SQLite each statement also carries per-column converters derived from the
statement's own column types; PostgreSQL rows need none.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Row = Mapping[str, Any]
T = TypeVar("T")

_DIALECTS: dict[str, sa.engine.Dialect] = {
    "postgresql": postgresql.asyncpg.dialect(),  # type: ignore[no-untyped-call]
    "sqlite": sqlite.dialect(),
}


class DatabaseError(Exception):
    """Base of the errors this layer raises instead of driver-specific ones."""


class UniqueViolation(DatabaseError):
    """A unique constraint refused the write; ``detail`` names the constraint or columns."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def mentions(self, name: str) -> bool:
        """Whether the violated constraint involves the given column or constraint name."""
        return name in self.detail


class TransientError(DatabaseError):
    """A deadlock, serialization failure or busy database: retrying the transaction may work."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached."""


class UnstorableText(DatabaseError):
    """Text the database cannot store or compare, such as a NUL character on PostgreSQL."""


class OutOfRange(DatabaseError):
    """A number outside its column's range, such as stock beyond PostgreSQL's 32-bit integer."""


def _parse_dt(value: Any) -> Any:
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def _parse_bool(value: Any) -> Any:
    return None if value is None else bool(value)


sqlite3.register_adapter(datetime, lambda d: d.astimezone(UTC).isoformat(timespec="microseconds"))


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement's SQL for one dialect, its parameter order, and row converters."""

    text: str
    params: tuple[str, ...]
    converters: tuple[tuple[str, Callable[[Any], Any]], ...]
    defaults: Mapping[str, Any]  # literals in the statement (``x >= 0``), bound like parameters

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """Positional arguments in the order the SQL expects them."""
        try:
            return [values[name] if name in values else self.defaults[name] for name in self.params]
        except KeyError as missing:
            raise TypeError(f"missing SQL parameter {missing}") from None


class Statement:
    """A Core statement compiled lazily, once per dialect."""

    __slots__ = ("_cache", "stmt")

    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._cache: dict[str, Compiled] = {}

    def compiled(self, dialect: str) -> Compiled:
        """The statement for the named dialect ('postgresql' or 'sqlite')."""
        found = self._cache.get(dialect)
        if found is None:
            found = self._cache[dialect] = self._compile(dialect)
        return found

    def _compile(self, dialect: str) -> Compiled:
        compiled = cast(SQLCompiler, self.stmt.compile(dialect=_DIALECTS[dialect]))
        required = {name for name, bind in compiled.binds.items() if bind.required}
        # literal IN-lists become plain parameters (statements use no expanding binds); the
        # statement's own parameters get placeholders just for this step
        state = compiled.construct_expanded_state(dict.fromkeys(required), escape_names=False)
        order = list(state.positiontup or [])
        if dialect == "postgresql":
            order = list(dict.fromkeys(order))  # $n placeholders are reused for repeats
        converters: list[tuple[str, Callable[[Any], Any]]] = []
        if dialect == "sqlite":
            for column in getattr(self.stmt, "exported_columns", ()):
                if isinstance(column.type, sa.DateTime):
                    converters.append((column.key, _parse_dt))
                elif isinstance(column.type, sa.Boolean):
                    converters.append((column.key, _parse_bool))
        defaults = {name: value for name, value in state.parameters.items() if name not in required}
        return Compiled(state.statement, tuple(order), tuple(converters), defaults)


def sql(stmt: ClauseElement) -> Statement:
    """Wrap a Core statement for execution through :class:`Connection`."""
    return Statement(stmt)


class Connection(Protocol):
    """One connection, inside or outside a transaction."""

    dialect: str

    async def fetch(self, stmt: Statement, /, **params: Any) -> list[Row]: ...

    async def fetchrow(self, stmt: Statement, /, **params: Any) -> Row | None: ...

    async def fetchval(self, stmt: Statement, /, **params: Any) -> Any: ...

    async def execute(self, stmt: Statement, /, **params: Any) -> int: ...

    async def executemany(self, stmt: Statement, rows: Iterable[Mapping[str, Any]]) -> None: ...

    async def execute_text(self, text: str) -> None: ...


class Database(Protocol):
    """The application's database: a pool on PostgreSQL, one connection on SQLite."""

    dialect: str
    url: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    def transaction(self, *, generic_plans: bool = False) -> Any: ...

    def connection(self) -> Any: ...

    async def ping(self) -> None: ...


def is_postgres_url(url: str) -> bool:
    """Whether a database URL points at PostgreSQL."""
    return url.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://"))


def sqlalchemy_url(url: str) -> str:
    """The async SQLAlchemy URL (used by Alembic only) for a mercato database URL."""
    if is_postgres_url(url):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")


async def run_in_transaction(
    db: Database,
    work: Callable[[Connection], Awaitable[T]],
    *,
    attempts: int = 5,
    on_retry: Callable[[int], None] | None = None,
    single_statement: bool = False,
    generic_plans: bool = False,
) -> T:
    """Run ``work`` in one transaction, retrying deadlocks and serialization failures.

    Retries back off exponentially with full jitter (10 ms base); after ``attempts`` the last
    :class:`TransientError` propagates, which the HTTP layer answers with 503 and Retry-After.

    With ``single_statement``, ``work`` sends exactly one statement, on a connection outside an
    explicit transaction: PostgreSQL runs a lone statement as a transaction of its own (all of
    its CTEs or none), so BEGIN and COMMIT would add two round trips and nothing else.

    With ``generic_plans``, PostgreSQL runs the transaction's prepared statements with their
    generic plans instead of planning them again for each execution's values. It chooses by
    estimated cost, and a statement taking arrays loses that comparison for ever: the generic
    plan of ``unnest(:ids)`` is costed for ten elements, the one made for the values for the
    three an order has, so the catalog's reservation was planned anew on every placement
    (0.2 ms of database CPU, as much as running it). Only for work whose statements find their
    rows by key, where the generic plan is the plan: one whose filters select by a value (a
    status, a time range, matching a partial index) needs the plan made for that value.
    """
    for attempt in range(1, attempts + 1):
        try:
            async with _opened(db, single_statement, generic_plans) as conn:
                return await work(conn)
        except TransientError:
            if attempt == attempts:
                raise
            if on_retry is not None:
                on_retry(attempt)
            await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
    raise AssertionError("unreachable")


def _opened(db: Database, single_statement: bool, generic_plans: bool) -> Any:
    return db.connection() if single_statement else db.transaction(generic_plans=generic_plans)


def rows_by(rows: Sequence[Row], key: str) -> dict[Any, list[Row]]:
    """Group rows by the value of one column (for assembling aggregates without N+1 queries)."""
    grouped: dict[Any, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row[key], []).append(row)
    return grouped
