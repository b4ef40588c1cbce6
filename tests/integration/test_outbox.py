"""The outbox relay: in order per aggregate, at least once, and exactly once across relays."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import anyio
import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.platform import outbox as outbox_module
from mercato.platform.db import Database, sql
from mercato.platform.outbox import EventBus, OutboxEvent, OutboxRelay, backlog, outbox
from tests.conftest import unique
from tests.integration.helpers import Pinged, outbox_rows

pytestmark = pytest.mark.anyio

_INSERT_AT = sql(
    sa.insert(outbox).values(
        aggregate_type="test",
        aggregate_id=sa.bindparam("aggregate_id"),
        event_type="Pinged",
        payload="{}",
        occurred_at=sa.bindparam("occurred_at"),
    )
)
_PUBLISH_AGGREGATE = sql(
    sa.update(outbox)
    .where(outbox.c.aggregate_id == sa.bindparam("aggregate_id"))
    .values(published_at=sa.bindparam("at"))
)


async def append(db: Database, events: list[tuple[str, int]]) -> None:
    """Write Pinged events (aggregate id, n) in one transaction, in the given order."""
    async with db.transaction() as conn:
        await outbox_module.append(conn, [Pinged(thing_id=a, n=n) for a, n in events])


class Recorder:
    """A subscriber that notes the events of some aggregates and can be told to fail."""

    def __init__(self, aggregates: set[str], name: str = "") -> None:
        self.aggregates = aggregates
        self.name = name
        self.attempts: list[OutboxEvent] = []
        self.delivered: list[OutboxEvent] = []
        self.fail_on: set[tuple[str, int]] = set()

    async def __call__(self, event: OutboxEvent) -> None:
        if event.aggregate_id not in self.aggregates:
            return
        self.attempts.append(event)
        if (event.aggregate_id, event.payload["n"]) in self.fail_on:
            raise RuntimeError("subscriber down")
        await asyncio.sleep(0)  # let other relays interleave
        self.delivered.append(event)

    def ns(self, aggregate_id: str, *, attempts: bool = False) -> list[int]:
        events = self.attempts if attempts else self.delivered
        return [e.payload["n"] for e in events if e.aggregate_id == aggregate_id]


def relay_with(container: Container, recorder: Recorder, **options: float) -> OutboxRelay:
    bus = EventBus()
    bus.subscribe("Pinged", recorder)
    return OutboxRelay(container.db, bus, **options)  # type: ignore[arg-type]


async def drain(relay: OutboxRelay, rounds: int = 30) -> None:
    for _ in range(rounds):
        if not await relay.run_once():
            return


async def test_the_relay_dispatches_each_aggregates_events_in_order_and_marks_them(
    container: Container,
) -> None:
    a, b = unique("agg"), unique("agg")
    await append(container.db, [(a, 0), (b, 0), (a, 1)])
    await append(container.db, [(b, 1), (a, 2)])
    recorder = Recorder({a, b})
    relay = relay_with(container, recorder)

    await drain(relay)

    assert recorder.ns(a) == [0, 1, 2]
    assert recorder.ns(b) == [0, 1]
    seqs = [e.seq for e in recorder.delivered]
    assert seqs == sorted(seqs)
    first = recorder.delivered[0]
    assert first.aggregate_type == "test"
    assert first.event_type == "Pinged"
    assert first.occurred_at.tzinfo is not None
    assert abs(datetime.now(UTC) - first.occurred_at) < timedelta(minutes=1)
    for aggregate in (a, b):
        rows = await outbox_rows(container.db, aggregate)
        assert all(r["published_at"] is not None for r in rows)
        assert all(r["claimed_until"] is None for r in rows)
    await drain(relay)
    assert len(recorder.attempts) == 5  # published events are never dispatched again


async def test_a_failed_event_stays_unpublished_and_is_retried_after_its_lease(
    container: Container,
) -> None:
    a = unique("agg")
    await append(container.db, [(a, 0)])
    recorder = Recorder({a})
    recorder.fail_on = {(a, 0)}
    relay = relay_with(container, recorder, lease_s=0.3)

    await drain(relay)
    assert recorder.ns(a, attempts=True) == [0]
    (row,) = await outbox_rows(container.db, a)
    assert row["published_at"] is None
    assert row["claimed_until"] > datetime.now(UTC)

    recorder.fail_on.clear()
    await drain(relay)
    assert recorder.ns(a, attempts=True) == [0]  # still leased: not handed out again yet

    await asyncio.sleep(0.35)
    await drain(relay)
    assert recorder.ns(a, attempts=True) == [0, 0]
    assert recorder.ns(a) == [0]
    (row,) = await outbox_rows(container.db, a)
    assert row["published_at"] is not None


async def test_a_later_event_waits_until_the_earlier_one_of_its_aggregate_is_published(
    container: Container,
) -> None:
    a, b = unique("agg"), unique("agg")
    await append(container.db, [(a, 0), (a, 1), (b, 0), (a, 2), (b, 1)])
    recorder = Recorder({a, b})
    recorder.fail_on = {(a, 0)}
    relay = relay_with(container, recorder, lease_s=0.02)

    for _ in range(4):
        await drain(relay)
        await asyncio.sleep(0.03)
    assert set(recorder.ns(a, attempts=True)) == {0}
    assert len(recorder.ns(a, attempts=True)) >= 2  # retried, and only ever the first
    assert recorder.ns(b) == [0, 1]  # other aggregates are not held up

    recorder.fail_on.clear()
    await asyncio.sleep(0.03)
    await drain(relay)
    assert recorder.ns(a) == [0, 1, 2]


async def test_two_relays_deliver_every_event_once_and_in_order_per_aggregate(
    container: Container, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("concurrent relays need FOR UPDATE SKIP LOCKED (PostgreSQL)")
    aggregates = [unique("agg") for _ in range(12)]
    per_aggregate = 12
    for n in range(per_aggregate):
        await append(container.db, [(a, n) for a in aggregates])
    total = len(aggregates) * per_aggregate
    log: list[OutboxEvent] = []
    recorders = [Recorder(set(aggregates), name) for name in ("one", "two")]
    relays = []
    for recorder in recorders:
        bus = EventBus()
        bus.subscribe("Pinged", recorder)
        bus.subscribe("Pinged", lambda e: _log(log, aggregates, e))
        relays.append(OutboxRelay(container.db, bus, batch=5))

    async def pump(relay: OutboxRelay) -> None:
        while len(log) < total:
            if not await relay.run_once():
                await asyncio.sleep(0.002)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for relay in relays:
                tg.start_soon(pump, relay)

    assert len(log) == total
    counts = Counter((e.aggregate_id, e.payload["n"]) for e in log)
    assert set(counts.values()) == {1}
    for aggregate in aggregates:
        assert [e.payload["n"] for e in log if e.aggregate_id == aggregate] == list(
            range(per_aggregate)
        )
    assert all(recorder.delivered for recorder in recorders), "both relays took part"


async def _log(log: list[OutboxEvent], aggregates: list[str], event: OutboxEvent) -> None:
    if event.aggregate_id in aggregates:
        log.append(event)


async def test_backlog_counts_unpublished_events_and_dates_the_oldest(
    container: Container,
) -> None:
    ancient = datetime(2001, 1, 1, 12, 0, tzinfo=UTC)
    old, new = unique("agg"), unique("agg")
    before, _ = await backlog(container.db)

    async with container.db.transaction() as conn:
        await conn.execute(_INSERT_AT, aggregate_id=old, occurred_at=ancient)
    await append(container.db, [(new, 0), (new, 1)])
    count, oldest = await backlog(container.db)
    assert count == before + 3
    assert oldest == ancient
    assert oldest is not None
    assert oldest.tzinfo is not None

    async with container.db.transaction() as conn:
        await conn.execute(_PUBLISH_AGGREGATE, aggregate_id=old, at=datetime.now(UTC))
    count, oldest = await backlog(container.db)
    assert count == before + 2
    assert oldest is not None
    assert oldest > ancient

    async with container.db.transaction() as conn:
        await conn.execute(_PUBLISH_AGGREGATE, aggregate_id=new, at=datetime.now(UTC))
    assert (await backlog(container.db))[0] == before
