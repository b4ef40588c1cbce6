"""The notifier against real databases: wake-ups in and across processes, order, capacity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container, build
from mercato.config import Settings
from mercato.orders.events import OrderConfirmed
from mercato.payments import SUCCESS_CARD
from mercato.platform import event_log, outbox
from mercato.platform.db import sql
from mercato.platform.notify import ShuttingDown, TooManyWaiting
from tests.conftest import make_settings, running
from tests.integration.follow import (
    Recorder,
    customer,
    drafts,
    eventually,
    placed_orders,
    staff,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def other(database_url: str) -> AsyncIterator[Container]:
    """A second process's view of the same database (its own pool and notifier)."""
    async with running(make_settings(database_url, database_pool_size=3)) as container:
        yield container


def postgres_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("needs PostgreSQL (two write transactions at once, LISTEN/NOTIFY)")


async def test_a_follower_of_an_order_hears_of_changes_committed_in_this_process(
    container: Container,
) -> None:
    clerk, owner = await staff(container), await customer(container)
    (order,) = await placed_orders(container, owner, clerk)
    recorder = Recorder()
    await container.notifier.follow(
        recorder, aggregate_type="order", aggregate_id=order.id, stream=False
    )

    confirmed = await container.orders.confirm(clerk, order.id)

    (change,) = await recorder.wait_for(1, within=2)
    assert (change.event_type, change.aggregate_id) == ("OrderConfirmed", order.id)
    assert change.payload["version"] == confirmed.version
    assert await event_log.last_seq(container.db) == change.seq
    container.notifier.unfollow(recorder, aggregate_type="order", aggregate_id=order.id)
    assert container.notifier.waiting == 0


async def test_a_follower_of_every_order_hears_events_in_sequence_order(
    container: Container,
) -> None:
    clerk, owner = await staff(container), await customer(container)
    first, second = await placed_orders(container, owner, clerk, count=2)
    everything, only_first = Recorder(), Recorder()
    await container.notifier.follow(everything, aggregate_type="order", stream=True)
    await container.notifier.follow(
        only_first, aggregate_type="order", aggregate_id=first.id, stream=True
    )

    await container.orders.confirm(clerk, second.id)
    await container.orders.confirm(clerk, first.id)
    await container.orders.ship(clerk, second.id)

    changes = await everything.wait_for(3)
    assert [(c.aggregate_id, c.event_type) for c in changes] == [
        (second.id, "OrderConfirmed"),
        (first.id, "OrderConfirmed"),
        (second.id, "OrderShipped"),
    ]
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    await asyncio.sleep(0.1)
    assert only_first.types == ["OrderConfirmed"]
    assert container.notifier.streams == 2


async def test_history_replays_one_order_or_all_orders_after_a_sequence_number(
    container: Container,
) -> None:
    clerk, owner = await staff(container), await customer(container)
    first, second = await placed_orders(container, owner, clerk, count=2)
    await container.orders.confirm(clerk, first.id)
    top = await event_log.last_seq(container.db)

    mine = await event_log.history(
        container.db, aggregate_type="order", aggregate_id=first.id, after=0, upto=top
    )
    assert [c.event_type for c in mine] == ["OrderPlaced", "OrderConfirmed"]
    later = await event_log.history(
        container.db, aggregate_type="order", aggregate_id=first.id, after=mine[0].seq, upto=top
    )
    assert later == mine[1:]
    everyone = await event_log.history(
        container.db, aggregate_type="order", aggregate_id=None, after=mine[0].seq - 1, upto=top
    )
    assert [(c.aggregate_id, c.event_type) for c in everyone] == [
        (first.id, "OrderPlaced"),
        (second.id, "OrderPlaced"),
        (first.id, "OrderConfirmed"),
    ]
    assert b'"occurred_at"' in everyone[0].data


async def test_followers_past_the_cap_are_refused_until_one_leaves(database_url: str) -> None:
    async with running(make_settings(database_url, realtime_max_waiting=2)) as container:
        hub = container.notifier
        first, second, third = Recorder(), Recorder(), Recorder()
        await hub.follow(first, aggregate_type="order", aggregate_id="a", stream=False)
        await hub.follow(second, aggregate_type="order", stream=True)

        with pytest.raises(TooManyWaiting) as refused:
            await hub.follow(third, aggregate_type="order", aggregate_id="b", stream=False)
        assert refused.value.retry_after >= 1
        assert (hub.waiting, hub.streams) == (1, 1)

        hub.unfollow(first, aggregate_type="order", aggregate_id="a")
        await hub.follow(third, aggregate_type="order", aggregate_id="b", stream=False)
        assert (hub.waiting, hub.streams) == (1, 1)


async def test_shutdown_ends_every_follower_and_refuses_new_ones(container: Container) -> None:
    waiting, streaming = Recorder(), Recorder()
    await container.notifier.follow(waiting, aggregate_type="order", aggregate_id="x", stream=False)
    await container.notifier.follow(streaming, aggregate_type="order", stream=True)

    container.notifier.shutdown()

    assert waiting.ended
    assert streaming.ended
    with pytest.raises(ShuttingDown):
        await container.notifier.follow(Recorder(), aggregate_type="order", stream=True)


async def test_streams_get_heartbeats_and_long_polls_do_not(database_url: str) -> None:
    async with running(make_settings(database_url, realtime_heartbeat_s=1)) as container:
        stream, poll = Recorder(), Recorder()
        await container.notifier.follow(stream, aggregate_type="order", stream=True)
        await container.notifier.follow(
            poll, aggregate_type="order", aggregate_id="x", stream=False
        )
        await asyncio.sleep(2.3)
        assert stream.beats == 2
        assert poll.beats == 0


async def test_a_change_committed_by_another_process_wakes_followers_within_a_second(
    backend: str, container: Container, other: Container
) -> None:
    postgres_only(backend)
    clerk, owner = await staff(other), await customer(other)
    (order,) = await placed_orders(other, owner, clerk)
    recorder = Recorder()
    await container.notifier.follow(
        recorder, aggregate_type="order", aggregate_id=order.id, stream=False
    )
    listener = container.notifier.listener
    assert listener is not None
    await eventually(lambda: listener.connected, within=5)

    await other.orders.confirm(clerk, order.id)

    (change,) = await recorder.wait_for(1, within=1)  # the safety poll is 10 s away
    assert change.event_type == "OrderConfirmed"


async def test_the_listener_reconnects_after_its_connection_is_killed(
    backend: str, container: Container, other: Container
) -> None:
    postgres_only(backend)
    clerk, owner = await staff(other), await customer(other)
    (order,) = await placed_orders(other, owner, clerk)
    recorder = Recorder()
    await container.notifier.follow(recorder, aggregate_type="order", stream=True)
    listener = container.notifier.listener
    assert listener is not None
    await eventually(lambda: listener.connected, within=5)

    async with other.db.connection() as conn:
        await conn.execute_text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'mercato-listen' AND datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    await eventually(lambda: listener.connects >= 2 and listener.connected, within=5)
    await other.orders.confirm(clerk, order.id)

    (change,) = await recorder.wait_for(1, within=1)
    assert (change.aggregate_id, change.event_type) == (order.id, "OrderConfirmed")


async def _insert_event(conn: object, order_id: str, version: int) -> None:
    event = OrderConfirmed(order_id=order_id, customer_id="c", version=version)
    await outbox.append(conn, [event])  # type: ignore[arg-type]


async def test_a_row_that_commits_after_a_later_one_is_not_skipped_by_the_all_orders_stream(
    backend: str, container: Container
) -> None:
    postgres_only(backend)
    hub = container.notifier
    everything, second_only = Recorder(), Recorder()
    await hub.follow(everything, aggregate_type="order", stream=True)
    await hub.follow(second_only, aggregate_type="order", aggregate_id="second", stream=True)

    slow = container.db.transaction()
    slow_conn = await slow.__aenter__()
    await _insert_event(slow_conn, "first", 1)  # takes the smaller seq, commits last
    async with container.db.transaction() as conn:
        await _insert_event(conn, "second", 1)
    hub.wake()

    await second_only.wait_for(1, within=2)  # one order's followers need not wait
    await asyncio.sleep(0.3)
    assert everything.changes == []  # the all-orders stream must not move past the hole

    await slow.__aexit__(None, None, None)
    hub.wake()
    changes = await everything.wait_for(2, within=2)
    assert [c.aggregate_id for c in changes] == ["first", "second"]
    assert changes[0].seq < changes[1].seq


async def test_a_rolled_back_row_holds_the_all_orders_stream_only_until_the_gap_timeout(
    backend: str, database_url: str
) -> None:
    postgres_only(backend)
    settings: Settings = make_settings(database_url, realtime_gap_timeout_s=0.5)
    async with running(settings) as container:
        everything = Recorder()
        await container.notifier.follow(everything, aggregate_type="order", stream=True)
        doomed = container.db.transaction()
        doomed_conn = await doomed.__aenter__()
        await _insert_event(doomed_conn, "doomed", 1)
        async with container.db.transaction() as conn:
            await _insert_event(conn, "kept", 1)
        container.notifier.wake()
        await asyncio.sleep(0.2)
        await doomed.__aexit__(RuntimeError, RuntimeError("rolled back"), None)
        assert everything.changes == []

        (change,) = await everything.wait_for(1, within=2)
        assert change.aggregate_id == "kept"


async def test_the_hub_stays_cold_until_someone_follows_and_cools_down_after(
    backend: str, database_url: str
) -> None:
    container = build(make_settings(database_url))
    container.notifier.linger_s = 0.2
    await container.start(workers=False)
    try:
        hub = container.notifier
        listener = hub.listener
        await asyncio.sleep(0.1)
        assert listener is None or not listener.connected
        recorder = Recorder()
        await hub.follow(recorder, aggregate_type="order", stream=True)
        if listener is not None:
            await eventually(lambda: listener.connected, within=5)
        hub.unfollow(recorder, aggregate_type="order")
        await asyncio.sleep(hub.linger_s + 0.3)
        hub.wake()  # cold: ignored
        assert listener is None or not listener.connected
        assert hub.held == 0
    finally:
        await container.stop()


async def test_a_statement_inserting_several_events_sends_one_notification_naming_them(
    backend: str, container: Container
) -> None:
    postgres_only(backend)
    heard: asyncio.Queue[str] = asyncio.Queue()

    def note(*args: object) -> None:
        heard.put_nowait(str(args[-1]))

    async with container.db.connection() as listening:
        raw = listening.raw
        await raw.add_listener("mercato_outbox", note)
        try:
            async with container.db.transaction() as conn:  # two rows, one statement
                await conn.execute_text(
                    "INSERT INTO platform_outbox"
                    " (aggregate_type, aggregate_id, event_type, payload, occurred_at)"
                    " SELECT 'order', 'notify-range', 'OrderConfirmed', '{}', now()"
                    " FROM generate_series(1, 2)"
                )
            async with container.db.transaction() as conn:  # a statement that inserts nothing
                await conn.execute_text(
                    "INSERT INTO platform_outbox"
                    " (aggregate_type, aggregate_id, event_type, payload, occurred_at)"
                    " SELECT 'order', 'notify-none', 'OrderConfirmed', '{}', now() WHERE false"
                )
            payload = await asyncio.wait_for(heard.get(), timeout=2)
            await asyncio.sleep(0.2)
            assert heard.empty(), "one notification per statement, none for nothing inserted"
        finally:
            await raw.remove_listener("mercato_outbox", note)
    first, last = map(int, payload.split("-"))
    async with container.db.connection() as conn:
        seqs = sorted(row["seq"] for row in await conn.fetch(_SEQS_OF, aggregate_id="notify-range"))
    assert seqs == [first, last]
    assert last == first + 1


_SEQS_OF = sql(
    sa.select(outbox.outbox.c.seq).where(
        outbox.outbox.c.aggregate_id == sa.bindparam("aggregate_id")
    )
)


async def test_a_placement_by_another_process_wakes_a_follower_of_the_order(
    backend: str, container: Container, other: Container
) -> None:
    postgres_only(backend)
    clerk, owner = await staff(other), await customer(other)
    (order,) = await drafts(other, owner, clerk)
    recorder = Recorder()
    await container.notifier.follow(
        recorder, aggregate_type="order", aggregate_id=order.id, stream=True
    )
    listener = container.notifier.listener
    assert listener is not None
    await eventually(lambda: listener.connected, within=5)

    # its settle writes two events in one statement: one notification names both
    await other.orders.place(owner, order.id, card_number=SUCCESS_CARD)

    await eventually(lambda: "OrderPlaced" in recorder.types, within=1)  # safety poll: 10 s
