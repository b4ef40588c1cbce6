"""The NATS relay against a real nats-server: every event once, in order per aggregate, acked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from mercato.bootstrap import Container
from mercato.platform import outbox as outbox_module
from mercato.platform.db import Database
from mercato.platform.jetstream import BrokerUnavailable, claims, event_id
from tests.conftest import unique
from tests.integration.helpers import Pinged, outbox_rows
from tests.jetstream import drain, read_stream, relay_for, skip_backlog, stream_settings
from tests.natsservers import free_ports, nats_cluster

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with nats_cluster(tmp_path_factory.mktemp("nats"), size=1) as (node,):
        yield node.url


@pytest.fixture(autouse=True)
async def _fresh_stream(container: Container) -> None:
    await skip_backlog(container.db)


async def append(db: Database, events: list[tuple[str, int]]) -> None:
    async with db.transaction() as conn:
        await outbox_module.append(conn, [Pinged(thing_id=a, n=n) for a, n in events])


async def test_every_event_reaches_the_stream_once_in_order_with_its_envelope(
    container: Container, nats_url: str, backend: str
) -> None:
    a, b = unique("agg"), unique("agg")
    await append(container.db, [(a, 0), (b, 0), (a, 1)])
    await append(container.db, [(a, 2), (b, 1)])
    settings = stream_settings(nats_url)
    relay = relay_for(container.db, settings, postgres=backend == "postgres", batch=3)
    try:
        await drain(relay)
        await drain(relay)  # nothing is published twice
    finally:
        await relay.close()

    received = await read_stream(nats_url, settings)
    rows = {agg: await outbox_rows(container.db, agg) for agg in (a, b)}
    assert received.by_aggregate({a, b}) == {
        agg: [r["seq"] for r in agg_rows] for agg, agg_rows in rows.items()
    }
    assert all(r["nats_published_at"] and r["nats_claim"] is None for v in rows.values() for r in v)
    assert all(r["published_at"] is None for v in rows.values() for r in v)  # other relay's
    subject, headers, first = next(m for m in received.messages if m[2]["aggregate_id"] == a)
    assert subject == f"{settings.subject_prefix}.test.Pinged"
    assert headers["Nats-Msg-Id"] == first["id"]
    assert first["envelope_version"] == 1
    assert first["type"] == "Pinged"
    assert first["data"] == {"thing_id": a, "n": 0}
    assert first["occurred_at"].endswith("Z")
    assert relay.metrics.duplicates._value.get() == 0


async def test_a_relay_that_dies_before_marking_is_repeated_and_jetstream_drops_the_repeat(
    container: Container, nats_url: str, backend: str
) -> None:
    a = unique("agg")
    await append(container.db, [(a, n) for n in range(4)])
    settings = stream_settings(nats_url)
    postgres = backend == "postgres"
    dying = relay_for(container.db, settings, postgres=postgres, lease_s=1.0)
    survivor = relay_for(container.db, settings, postgres=postgres)
    try:
        js = await dying.link.jetstream()
        batch = await claims.claim(container.db, limit=10_000, lease_s=1.0, postgres=postgres)
        acked: list[int] = []
        await dying._publish(js, batch.events, acked)  # published, then "killed" before marking
        assert len(acked) >= 4
        assert all(r["nats_published_at"] is None for r in await outbox_rows(container.db, a))
        assert await survivor.run_once() == 0  # the dead relay's lease still holds the rows
        await asyncio.sleep(1.1)
        await drain(survivor)
    finally:
        await dying.close()
        await survivor.close()

    assert survivor.metrics.duplicates._value.get() >= 4
    received = await read_stream(nats_url, settings)
    seqs = [r["seq"] for r in await outbox_rows(container.db, a)]
    assert received.by_aggregate({a}) == {a: seqs}  # once each, in order
    assert all(r["nats_published_at"] for r in await outbox_rows(container.db, a))


async def test_two_relays_racing_keep_every_aggregate_in_order_and_publish_each_event_once(
    container: Container, nats_url: str, backend: str
) -> None:
    aggregates = [unique("agg") for _ in range(6)]
    for n in range(5):
        await append(container.db, [(agg, n) for agg in aggregates])
    settings = stream_settings(nats_url)
    postgres = backend == "postgres"
    relays = [relay_for(container.db, settings, postgres=postgres, batch=7) for _ in range(2)]
    try:
        await asyncio.gather(*(drain(r) for r in relays))
    finally:
        for relay in relays:
            await relay.close()

    received = await read_stream(nats_url, settings)
    expected = {agg: [r["seq"] for r in await outbox_rows(container.db, agg)] for agg in aggregates}
    assert received.by_aggregate(set(aggregates)) == expected
    published = sum(r.metrics.published._value.get() for r in relays)
    duplicates = sum(r.metrics.duplicates._value.get() for r in relays)
    assert duplicates == 0  # the claims split the work: nothing was sent twice
    assert published >= 30


async def test_an_unreachable_broker_keeps_every_event_in_the_outbox_unclaimed(
    container: Container, backend: str
) -> None:
    a = unique("agg")
    await append(container.db, [(a, 0), (a, 1)])
    (port,) = free_ports(1)  # nothing listens there
    settings = stream_settings(f"nats://127.0.0.1:{port}", ack_timeout_s=0.5)
    relay = relay_for(container.db, settings, postgres=backend == "postgres")
    try:
        with pytest.raises(BrokerUnavailable):
            await relay.publish_batch()
        assert await relay.run_once() == 0  # no error reaches the worker runner...
        assert await relay.run_once() == 0  # ...and while it backs off it does not even try
    finally:
        await relay.close()
    rows = await outbox_rows(container.db, a)
    assert [r["nats_published_at"] for r in rows] == [None, None]
    assert [r["nats_claim"] for r in rows] == [None, None]
    assert relay.metrics.failures.labels("disconnected")._value.get() == 2


async def test_the_event_id_is_the_same_for_every_relay_and_retry(
    container: Container,
) -> None:
    a = unique("agg")
    await append(container.db, [(a, 0)])
    (row,) = await outbox_rows(container.db, a)
    event = outbox_module.OutboxEvent.from_row(row)
    (again,) = await outbox_rows(container.db, a)
    assert event_id(event) == event_id(outbox_module.OutboxEvent.from_row(again))
    other = outbox_module.OutboxEvent(
        seq=event.seq,
        aggregate_type=event.aggregate_type,
        aggregate_id=unique("agg"),  # a reused sequence number with other content
        event_type=event.event_type,
        payload=event.payload,
        occurred_at=event.occurred_at,
    )
    assert event_id(other) != event_id(event)
