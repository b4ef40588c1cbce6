"""The unit of work: events reach the outbox with the change, or not at all."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.customers.store import customers
from mercato.kernel.events import DomainEvent
from mercato.payments import SUCCESS_CARD
from mercato.platform.db import Connection, Database, TransientError, sql
from mercato.platform.uow import Transactor, UnitOfWork, UnsavedChanges
from tests.conftest import unique
from tests.integration.helpers import (
    Pinged,
    Thing,
    ThingConflict,
    ThingRepository,
    VersionedThing,
    customer,
    draft,
    outbox_rows,
    product,
)

pytestmark = pytest.mark.anyio

_EXISTS = sql(sa.select(customers.c.id).where(customers.c.id == sa.bindparam("id")))
_INSERT = sql(
    sa.insert(customers).values(
        id=sa.bindparam("id"),
        email=sa.bindparam("email"),
        name="UoW",
        password_hash="x",
        role="customer",
        active=sa.true(),
        created_at=sa.func.current_timestamp(),
        version=1,
    )
)


class RecordingDatabase:
    """A database that notes when transactions begin and commit."""

    def __init__(self, db: Database, log: list[str]) -> None:
        self.db = db
        self.dialect = db.dialect
        self.url = db.url
        self.log = log

    @asynccontextmanager
    async def transaction(self, *, generic_plans: bool = False) -> AsyncIterator[Connection]:
        self.log.append("begin")
        async with self.db.transaction(generic_plans=generic_plans) as conn:
            yield conn
        self.log.append("committed")

    def connection(self) -> Any:
        return self.db.connection()


async def insert_marker(conn: Connection) -> str:
    marker = unique("uow")
    await conn.execute(_INSERT, id=marker, email=f"{marker}@example.com")
    return marker


async def exists(db: Database, marker: str) -> bool:
    async with db.connection() as conn:
        return await conn.fetchrow(_EXISTS, id=marker) is not None


async def test_collected_events_are_written_to_the_outbox_with_the_change(
    container: Container,
) -> None:
    thing = Thing(unique("thing"))

    async def work(uow: UnitOfWork) -> str:
        marker = await insert_marker(uow.conn)
        thing.ping(1)
        thing.ping(2)
        uow.add(*thing.pull_events())
        uow.add(Pinged(thing_id=thing.id, n=3))
        return marker

    marker = await container.transact(work)
    assert await exists(container.db, marker)
    rows = await outbox_rows(container.db, thing.id)
    assert [(r["aggregate_type"], r["event_type"]) for r in rows] == [("test", "Pinged")] * 3
    assert [orjson.loads(r["payload"]) for r in rows] == [
        {"thing_id": thing.id, "n": n} for n in (1, 2, 3)
    ]
    assert all(r["published_at"] is None and r["claimed_until"] is None for r in rows)
    assert thing.pending_events == ()


async def test_the_outbox_write_is_part_of_the_transaction(container: Container) -> None:
    thing = Thing(unique("thing"))
    markers: list[str] = []

    class Unserialisable(Pinged):
        def payload(self) -> dict[str, Any]:
            return {"not json": {1, 2}}

    async def work(uow: UnitOfWork) -> None:
        markers.append(await insert_marker(uow.conn))
        uow.add(Pinged(thing_id=thing.id, n=1), Unserialisable(thing_id=thing.id, n=2))

    with pytest.raises(TypeError):
        await container.transact(work)
    assert not await exists(container.db, markers[0])
    assert await outbox_rows(container.db, thing.id) == []


async def test_nothing_is_written_and_no_hook_runs_when_the_work_raises(
    container: Container,
) -> None:
    thing = Thing(unique("thing"))
    hooked: list[list[DomainEvent]] = []
    container.transact.after_commit(hooked.append)
    markers: list[str] = []

    async def work(uow: UnitOfWork) -> None:
        markers.append(await insert_marker(uow.conn))
        thing.ping(1)
        uow.add(*thing.pull_events())
        raise LookupError("refused")

    with pytest.raises(LookupError):
        await container.transact(work)
    assert not await exists(container.db, markers[0])
    assert await outbox_rows(container.db, thing.id) == []
    assert hooked == []


async def test_after_commit_hooks_run_once_after_the_commit_with_the_events(
    container: Container,
) -> None:
    log: list[str] = []
    transact = Transactor(RecordingDatabase(container.db, log))  # type: ignore[arg-type]
    transact.after_commit(lambda events: log.append(f"hook:{len(events)}"))
    seen: list[list[DomainEvent]] = []
    transact.after_commit(seen.append)
    thing = Thing(unique("thing"))

    async def work(uow: UnitOfWork) -> None:
        log.append("work")
        thing.ping(1)
        thing.ping(2)
        uow.add(*thing.pull_events())

    await transact(work)
    assert log == ["begin", "work", "committed", "hook:2"]
    assert len(seen) == 1
    assert [e.payload()["n"] for e in seen[0]] == [1, 2]


async def test_a_retried_unit_of_work_writes_the_events_of_the_successful_attempt_only(
    container: Container,
) -> None:
    transact = Transactor(container.db, attempts=3)
    hooked: list[list[DomainEvent]] = []
    transact.after_commit(hooked.append)
    retried: list[int] = []
    transact.on_retry(retried.append)
    thing_id = unique("thing")
    markers: list[str] = []

    async def work(uow: UnitOfWork) -> None:
        markers.append(await insert_marker(uow.conn))
        thing = Thing(thing_id)
        thing.ping(len(markers))
        uow.add(*thing.pull_events())
        if len(markers) == 1:
            raise TransientError("deadlock detected")

    await transact(work)
    assert retried == [1]
    assert [await exists(container.db, m) for m in markers] == [False, True]
    rows = await outbox_rows(container.db, thing_id)
    assert [orjson.loads(r["payload"])["n"] for r in rows] == [2]
    assert len(hooked) == 1
    assert [e.payload()["n"] for e in hooked[0]] == [2]


async def test_aggregates_a_repository_handed_out_have_their_events_committed_without_collect(
    container: Container,
) -> None:
    thing_id = unique("thing")
    ThingRepository.rows[thing_id] = 1

    async def work(uow: UnitOfWork) -> None:
        things = uow.repository(ThingRepository)
        assert uow.repository(ThingRepository) is things  # one per unit of work
        thing = things.get(thing_id)
        thing.ping(1)
        thing.ping(2)
        await things.save(thing)
        fresh = VersionedThing(unique("thing"))
        things.add(fresh)
        fresh.ping(3)
        await things.save(fresh)

    await container.transact(work)
    assert ThingRepository.rows[thing_id] == 3
    rows = await outbox_rows(container.db, thing_id)
    assert [orjson.loads(r["payload"])["n"] for r in rows] == [1, 2]


async def test_a_changed_aggregate_that_was_not_saved_fails_the_unit_of_work_before_commit(
    container: Container,
) -> None:
    thing_id = unique("thing")
    ThingRepository.rows[thing_id] = 1
    markers: list[str] = []

    async def work(uow: UnitOfWork) -> None:
        markers.append(await insert_marker(uow.conn))
        uow.repository(ThingRepository).get(thing_id).ping(1)

    with pytest.raises(UnsavedChanges):
        await container.transact(work)
    assert not await exists(container.db, markers[0])
    assert await outbox_rows(container.db, thing_id) == []


async def test_a_save_guarded_by_a_version_that_moved_raises_the_modules_conflict(
    container: Container,
) -> None:
    thing_id = unique("thing")
    ThingRepository.rows[thing_id] = 1

    async def work(uow: UnitOfWork) -> None:
        things = uow.repository(ThingRepository)
        thing = things.get(thing_id)
        ThingRepository.rows[thing_id] = 7  # another transaction moved the row meanwhile
        thing.ping(1)
        await things.save(thing)

    with pytest.raises(ThingConflict):
        await container.transact(work)
    assert await outbox_rows(container.db, thing_id) == []


async def test_an_unchanged_aggregate_is_not_written(container: Container) -> None:
    thing_id = unique("thing")
    ThingRepository.rows[thing_id] = 1

    async def work(uow: UnitOfWork) -> None:
        things = uow.repository(ThingRepository)
        thing = things.get(thing_id)
        ThingRepository.rows[thing_id] = 5  # a write would be refused: none is attempted
        await things.save(thing)

    await container.transact(work)
    assert ThingRepository.rows[thing_id] == 5


async def test_reads_get_a_unit_of_work_whose_repositories_query_the_pooled_connection(
    container: Container,
) -> None:
    marker = await container.transact(lambda uow: insert_marker(uow.conn))

    async def read(uow: UnitOfWork) -> bool:
        return await uow.conn.fetchrow(_EXISTS, id=marker) is not None

    assert await container.transact.read(read)


async def test_placing_orders_leaves_no_garbage_that_only_the_collector_frees(
    container: Container,
) -> None:
    # An object graph in a reference cycle outlives its request until the cyclic collector
    # runs; with placements leaving theirs (each unit of work held its repositories, each
    # repository its unit of work), a serving process collected 50,000 at a time in pauses of
    # 90-230 ms that held up every request in flight (bench/RESULTS.md).
    owner = await customer(container)
    items = [await product(container, stock=50) for _ in range(3)]
    for _ in range(2):  # first-use caches (statements, plans) are not garbage
        order = await draft(container, owner, {item.id: 1 for item in items})
        await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(5):
            order = await draft(container, owner, {item.id: 1 for item in items})
            placed = await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
            assert placed.status.value == "placed"
            await container.orders.get(owner, order.id)
            await container.catalog.product_view(items[0].id, staff=False)
        gc.collect()
        ours = [o for o in gc.garbage if type(o).__module__.startswith("mercato.")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert ours == [], sorted({type(o).__qualname__ for o in ours})
