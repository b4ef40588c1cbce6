"""platform.db on real SQLite and PostgreSQL: compilation, parameters, rows, errors, retries."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.customers.store import customers
from mercato.platform import db as db_module
from mercato.platform.db import (
    Connection,
    Statement,
    TransientError,
    UniqueViolation,
    run_in_transaction,
    sql,
)
from mercato.platform.db_sqlite import SqliteDatabase
from tests.conftest import unique

pytestmark = pytest.mark.anyio

_INSERT = sql(sa.insert(customers).values({c.name: sa.bindparam(c.name) for c in customers.c}))
_BY_ID = sql(
    sa.select(customers.c.id, customers.c.active, customers.c.created_at).where(
        customers.c.id == sa.bindparam("id")
    )
)
_COUNT_BY_ID = sql(
    sa.select(sa.func.count()).select_from(customers).where(customers.c.id == sa.bindparam("id"))
)
_ACTIVATE = sql(
    sa.update(customers)
    .where(customers.c.id == sa.bindparam("id"))
    .values(active=sa.true())
    .returning(customers.c.active, customers.c.created_at)
)
_A = sa.bindparam("a", type_=sa.Integer)
_B = sa.bindparam("b", type_=sa.Integer)
_C = sa.bindparam("c", type_=sa.Integer)


def customer_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": unique("id"),
        "email": f"{unique('db')}@example.com",
        "name": "Row",
        "password_hash": "x",
        "role": "customer",
        "active": False,
        "created_at": datetime.now(UTC),
        "version": 1,
    }
    row.update(overrides)
    return row


async def count(container: Container, customer_id: str) -> int:
    async with container.db.connection() as conn:
        return int(await conn.fetchval(_COUNT_BY_ID, id=customer_id))


async def test_a_statement_is_compiled_once_per_dialect_and_then_reused(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[str] = []
    original = Statement._compile

    def counting(self: Statement, dialect: str) -> Any:
        compiled.append(dialect)
        return original(self, dialect)

    monkeypatch.setattr(Statement, "_compile", counting)
    stmt = sql(sa.select(_A.label("a")))
    async with container.db.connection() as conn:
        for value in range(3):
            assert await conn.fetchval(stmt, a=value) == value
    assert compiled == [container.db.dialect]

    assert stmt.compiled("postgresql") is stmt.compiled("postgresql")
    assert stmt.compiled("sqlite") is stmt.compiled("sqlite")
    assert sorted(compiled) == ["postgresql", "sqlite"]
    assert "$1" in stmt.compiled("postgresql").text
    assert "?" in stmt.compiled("sqlite").text


async def test_parameters_are_passed_in_the_order_the_sql_uses_them_even_when_repeated(
    container: Container,
) -> None:
    # (a - b) * a + c: any mix-up of the positions changes the answer
    stmt = sql(sa.select(((_A - _B) * sa.bindparam("a", type_=sa.Integer) + _C).label("v")))
    async with container.db.connection() as conn:
        assert await conn.fetchval(stmt, c=1, b=2, a=5) == 16
        assert await conn.fetchval(stmt, a=2, b=5, c=0) == -6
        row = await conn.fetchrow(stmt, b=0, c=-1, a=3)
        with pytest.raises(TypeError, match="missing SQL parameter"):
            await conn.fetchval(stmt, a=1, b=2)
    assert row is not None
    assert row["v"] == 8


async def test_literals_in_a_statement_are_bound_as_defaults(container: Container) -> None:
    # the shape of the catalog's guarded update: x + :d >= 0 (the 0 and the 7 are literals)
    stmt = sql(sa.select((_A + _B >= 0).label("ok"), (_A + 7).label("plus_seven")))
    async with container.db.connection() as conn:
        enough = await conn.fetchrow(stmt, a=3, b=-3)
        short = await conn.fetchrow(stmt, a=3, b=-4)
    assert enough is not None
    assert short is not None
    assert (enough["ok"], enough["plus_seven"]) == (True, 10)
    assert (short["ok"], short["plus_seven"]) == (False, 10)
    assert set(stmt.compiled(container.db.dialect).defaults.values()) == {0, 7}


async def test_a_literal_in_list_is_bound_like_any_other_literal(container: Container) -> None:
    wanted, other = customer_row(), customer_row()
    async with container.db.transaction() as conn:
        await conn.executemany(_INSERT, [wanted, other])
    stmt = sql(
        sa.select(customers.c.id).where(
            customers.c.id.in_([wanted["id"], unique("none")]),
            customers.c.version == sa.bindparam("version"),
        )
    )
    async with container.db.connection() as conn:
        assert [r["id"] for r in await conn.fetch(stmt, version=1)] == [wanted["id"]]
        assert await conn.fetch(stmt, version=2) == []


async def test_rows_are_mappings_with_aware_datetimes_and_real_booleans(
    container: Container,
) -> None:
    berlin_summer = timezone(timedelta(hours=2))
    created = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=berlin_summer)
    inserted = customer_row(created_at=created, active=False)
    async with container.db.transaction() as conn:
        assert await conn.execute(_INSERT, **inserted) == 1
    async with container.db.connection() as conn:
        rows = await conn.fetch(_BY_ID, id=inserted["id"])
    assert len(rows) == 1
    row = rows[0]
    assert dict(row) == {"id": inserted["id"], "active": False, "created_at": created}
    assert list(row.keys()) == ["id", "active", "created_at"]
    assert row["active"] is False
    assert row["created_at"].tzinfo is not None
    assert row["created_at"].utcoffset() == timedelta(0)
    assert row["created_at"] == created

    async with container.db.transaction() as conn:
        returned = await conn.fetchrow(_ACTIVATE, id=inserted["id"])
    assert returned is not None
    assert returned["active"] is True
    assert isinstance(returned["created_at"], datetime)
    assert returned["created_at"] == created


async def test_a_unique_violation_is_raised_inside_the_transaction_naming_the_column(
    container: Container,
) -> None:
    first = customer_row()
    async with container.db.transaction() as conn:
        await conn.execute(_INSERT, **first)
    seen: list[UniqueViolation] = []
    duplicate = customer_row(email=first["email"])

    async def insert_duplicate() -> None:
        async with container.db.transaction() as conn:
            try:
                await conn.execute(_INSERT, **duplicate)
            except UniqueViolation as exc:  # stores translate it to a domain error right here
                seen.append(exc)
                raise

    with pytest.raises(UniqueViolation):
        await insert_duplicate()
    assert len(seen) == 1
    assert seen[0].mentions("email")
    assert not seen[0].mentions("password_hash")
    assert await count(container, duplicate["id"]) == 0


class Boom(Exception):
    pass


async def test_a_failing_transaction_rolls_back_every_statement(container: Container) -> None:
    kept, lost_a, lost_b = customer_row(), customer_row(), customer_row()
    async with container.db.transaction() as conn:
        await conn.execute(_INSERT, **kept)

    async def write_then_raise() -> None:
        async with container.db.transaction() as conn:
            await conn.execute(_INSERT, **lost_a)
            await conn.executemany(_INSERT, [lost_b])
            await conn.fetchrow(_ACTIVATE, id=kept["id"])
            raise Boom()

    async def write_then_violate() -> None:
        async with container.db.transaction() as conn:
            await conn.execute(_INSERT, **lost_a)
            await conn.execute(_INSERT, **customer_row(email=kept["email"]))

    with pytest.raises(Boom):
        await write_then_raise()
    with pytest.raises(UniqueViolation):
        await write_then_violate()
    assert await count(container, lost_a["id"]) == 0
    assert await count(container, lost_b["id"]) == 0
    async with container.db.connection() as conn:
        still = await conn.fetchrow(_BY_ID, id=kept["id"])
    assert still is not None
    assert still["active"] is False


@pytest.fixture
def recorded_backoff(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Record the jitter ranges and sleeps of run_in_transaction instead of sleeping."""
    ranges: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        ranges.append((low, high))
        return high

    async def sleep(delay: float) -> None:
        assert delay == ranges[-1][1]
        await asyncio.sleep(0)

    monkeypatch.setattr(db_module, "random", SimpleNamespace(uniform=uniform))
    monkeypatch.setattr(db_module, "asyncio", SimpleNamespace(sleep=sleep))
    return ranges


async def test_run_in_transaction_retries_transient_errors_with_growing_backoff(
    container: Container, recorded_backoff: list[tuple[float, float]]
) -> None:
    row = customer_row()
    attempts: list[int] = []
    retried: list[int] = []

    async def work(conn: Connection) -> str:
        attempts.append(len(attempts) + 1)
        await conn.execute(_INSERT, **row)  # same id every time: only a rollback lets it repeat
        if len(attempts) <= 3:
            raise TransientError("deadlock detected")
        return "done"

    result = await run_in_transaction(container.db, work, attempts=5, on_retry=retried.append)
    assert result == "done"
    assert attempts == [1, 2, 3, 4]
    assert retried == [1, 2, 3]
    assert recorded_backoff == [(0, 0.02), (0, 0.04), (0, 0.08)]
    assert await count(container, row["id"]) == 1


async def test_run_in_transaction_gives_up_after_the_last_attempt(
    container: Container, recorded_backoff: list[tuple[float, float]]
) -> None:
    row = customer_row()
    calls = 0

    async def work(conn: Connection) -> None:
        nonlocal calls
        calls += 1
        await conn.execute(_INSERT, **row)
        raise TransientError(f"serialization failure {calls}")

    with pytest.raises(TransientError, match="serialization failure 3"):
        await run_in_transaction(container.db, work, attempts=3)
    assert calls == 3
    assert len(recorded_backoff) == 2
    assert await count(container, row["id"]) == 0


async def test_run_in_transaction_does_not_retry_other_errors(
    container: Container, recorded_backoff: list[tuple[float, float]]
) -> None:
    calls = 0

    async def work(conn: Connection) -> None:
        nonlocal calls
        calls += 1
        raise LookupError("not transient")

    with pytest.raises(LookupError):
        await run_in_transaction(container.db, work, attempts=5)
    assert calls == 1
    assert recorded_backoff == []


async def _lock_in_order(
    conn: Connection, first: str, second: str, *, both_hold_one: anyio.Event, ready: list[str]
) -> None:
    raw = conn.raw  # type: ignore[attr-defined]
    await raw.execute("SET LOCAL deadlock_timeout = '50ms'")
    await raw.execute("UPDATE customers_customers SET version = version + 1 WHERE id = $1", first)
    ready.append(first)
    if len(ready) == 2:
        both_hold_one.set()
    await both_hold_one.wait()
    await raw.execute("UPDATE customers_customers SET version = version + 1 WHERE id = $1", second)


async def test_a_postgres_deadlock_becomes_a_transient_error(
    container: Container, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite serialises writers with one lock: it cannot deadlock")
    a, b = customer_row(), customer_row()
    async with container.db.transaction() as conn:
        await conn.executemany(_INSERT, [a, b])
    both_hold_one = anyio.Event()
    ready: list[str] = []
    outcomes: dict[str, BaseException | None] = {}

    async def run(first: str, second: str) -> None:
        try:
            async with container.db.transaction() as conn:
                await _lock_in_order(conn, first, second, both_hold_one=both_hold_one, ready=ready)
        except Exception as exc:
            outcomes[first] = exc
        else:
            outcomes[first] = None

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, a["id"], b["id"])
            tg.start_soon(run, b["id"], a["id"])
    failed = [exc for exc in outcomes.values() if exc is not None]
    assert len(failed) == 1, outcomes
    assert isinstance(failed[0], TransientError)
    assert "deadlock" in str(failed[0])


async def test_run_in_transaction_resolves_a_postgres_deadlock_by_retrying(
    container: Container, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite serialises writers with one lock: it cannot deadlock")
    a, b = customer_row(), customer_row()
    async with container.db.transaction() as conn:
        await conn.executemany(_INSERT, [a, b])
    both_hold_one = anyio.Event()
    ready: list[str] = []
    retries: list[int] = []

    def work(first: str, second: str) -> Any:
        async def attempt(conn: Connection) -> None:
            if both_hold_one.is_set():  # a retry: take the locks without waiting for the other
                await conn.raw.execute(  # type: ignore[attr-defined]
                    "UPDATE customers_customers SET version = version + 1 WHERE id = ANY($1)",
                    [first, second],
                )
                return
            await _lock_in_order(conn, first, second, both_hold_one=both_hold_one, ready=ready)

        return attempt

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: run_in_transaction(
                    container.db, work(a["id"], b["id"]), on_retry=retries.append
                )
            )
            tg.start_soon(
                lambda: run_in_transaction(
                    container.db, work(b["id"], a["id"]), on_retry=retries.append
                )
            )
    assert retries == [1]
    async with container.db.connection() as conn:
        versions = [
            await conn.fetchval(sql(sa.select(customers.c.version).where(customers.c.id == i)))
            for i in (a["id"], b["id"])
        ]
    assert versions == [3, 3]  # both transactions committed their two updates, once each


async def test_a_busy_sqlite_database_becomes_a_transient_error(
    database_url: str, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("the busy-file case is SQLite's")
    other = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    db = SqliteDatabase(database_url, timeout=0.05)
    await db.connect()
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(TransientError, match="locked"):
            async with db.transaction():
                pass
        other.execute("ROLLBACK")
        async with db.transaction() as conn:  # free again: the same database works
            assert await conn.fetchval(sql(sa.select(sa.literal(1).label("one")))) == 1
    finally:
        other.close()
        await db.close()
