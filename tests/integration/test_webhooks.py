"""Webhook deliveries on both databases, to a real local receiver that verifies each signature
with the ``standardwebhooks`` library: fan-out, retries on the schedule, 410, endpoints failing
for days, redirects, replay, the SSRF guard at send time and slow-endpoint isolation.

The module runs on a database of its own: a dispatcher sends every due delivery in its
database, so another test's endpoint (at an address nobody answers) would hold these tests up
behind its timeouts and retries, and the schedule's timings would no longer be this module's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from mercato.bootstrap import Container
from mercato.config import Settings
from mercato.migrations import migrate
from mercato.platform.outbox import OutboxEvent
from mercato.platform.uow import Transactor
from mercato.platform.workers import WorkerRunner
from mercato.webhooks import AddressGuard, WebhooksService
from mercato.webhooks.domain import MAX_ATTEMPTS, retry_delay
from mercato.webhooks.service import ENDPOINTS_CACHE_S
from mercato.webhooks.store import DeliveryRepository
from tests.conftest import make_settings, running
from tests.e2e.scratch import scratch_database
from tests.integration.counting import CountingDatabase
from tests.integration.helpers import STAFF, outbox_rows
from tests.integration.webhook_helpers import (
    deliveries_of,
    dispatcher,
    endpoints_made,
    event,
    failing_since,
    make_due,
    register,
    rounds,
)
from tests.webhook_receiver import Behaviour, receiving

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def own_database(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A freshly migrated database only this module's tests write to."""
    backend = "sqlite" if database_url.startswith("sqlite") else "postgres"
    folder: Path = tmp_path_factory.mktemp("webhooks")
    with scratch_database(backend, folder, "webhooks") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def settings(own_database: str) -> Settings:
    return make_settings(own_database)


async def test_a_committed_event_reaches_the_receiver_signed_as_standard_webhooks_says(
    container: Container,
) -> None:
    async with receiving() as receiver, endpoints_made(container) as made:
        endpoint_id, secret = await register(
            container, made, receiver.url("/hook"), ["ProductCreated"]
        )
        receiver.behaviours["/hook"] = Behaviour(secret=secret)
        product = await container.catalog.create_product(
            actor_id=STAFF.user_id,
            sku=f"WH-{endpoint_id[-12:]}".upper(),
            name="Hooked",
            description="",
            price_amount=100,
            currency="EUR",
            weight_grams=1,
            initial_stock=1,
        )
        while await container.relay.run_once():
            pass
        worker = dispatcher(container)
        await rounds(worker)
        (got,) = await receiver.wait_for("/hook", 1)
        assert got.verified is True
        body = orjson.loads(got.body)
        assert body["type"] == "ProductCreated"
        assert body["data"]["product_id"] == product.id
        (row,) = [r for r in await deliveries_of(container, endpoint_id)]
        assert got.webhook_id == row["id"]
        assert (row["status"], row["attempts"], row["last_status_code"]) == ("succeeded", 1, 200)
        await worker.drain()


async def test_an_event_handed_over_twice_is_delivered_once_and_only_where_it_is_wanted(
    container: Container,
) -> None:
    async with receiving() as receiver, endpoints_made(container) as made:
        wants, _ = await register(container, made, receiver.url("/a"), ["OrderPlaced"])
        other, _ = await register(container, made, receiver.url("/b"), ["OrderShipped"])
        everything, _ = await register(container, made, receiver.url("/c"), ["*"])
        off, _ = await register(container, made, receiver.url("/d"), ["*"])
        await container.webhooks.update(off, enabled=False)
        placed = event("OrderPlaced")
        await container.webhooks.on_event(placed)
        await container.webhooks.on_event(placed)  # the relay may hand an event over again
        counts = {e: len(await deliveries_of(container, e)) for e in made}
        assert counts == {wants: 1, other: 0, everything: 1, off: 0}


async def test_failures_are_retried_on_the_schedule_until_the_attempts_are_spent(
    container: Container,
) -> None:
    async with receiving() as receiver, endpoints_made(container) as made:
        endpoint_id, secret = await register(container, made, receiver.url("/down"))
        receiver.behaviours["/down"] = Behaviour(status=503, secret=secret)
        await container.webhooks.on_event(event())
        worker = dispatcher(container)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            before = datetime.now(UTC)
            await rounds(worker)
            (row,) = await deliveries_of(container, endpoint_id)
            assert row["attempts"] == attempt
            assert row["last_status_code"] == 503
            delay = retry_delay(attempt, jitter=1.0)
            if delay is None:
                assert row["status"] == "failed"
                assert row["next_attempt_at"] is None
            else:
                assert row["status"] == "pending"
                waited = row["next_attempt_at"] - before
                assert delay <= waited <= delay + timedelta(seconds=5)
                await rounds(worker)  # not due yet: nothing is sent
                assert len(receiver.at("/down")) == attempt
                await make_due(container, endpoint_id)
        sent = receiver.at("/down")
        assert len(sent) == MAX_ATTEMPTS
        assert all(r.verified for r in sent)
        assert len({r.webhook_id for r in sent}) == 1, "every retry carries the same webhook-id"
        log = await container.webhooks.delivery(endpoint_id, sent[0].webhook_id)
        assert [a.status_code for a in log.attempts] == [503] * MAX_ATTEMPTS
        await worker.drain()


async def test_an_endpoint_answering_410_is_disabled_and_staff_are_told(
    container: Container,
) -> None:
    async with receiving() as receiver, endpoints_made(container) as made:
        endpoint_id, _ = await register(container, made, receiver.url("/gone"))
        receiver.behaviours["/gone"] = Behaviour(status=410)
        await container.webhooks.on_event(event())
        await container.webhooks.on_event(event())
        worker = dispatcher(container, per_endpoint=1)
        await rounds(worker)
        endpoint = await container.webhooks.get(endpoint_id)
        assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
        rows = await deliveries_of(container, endpoint_id)
        assert sorted(r["status"] for r in rows) == ["failed", "pending"]
        assert len(receiver.at("/gone")) == 1, "nothing more is sent to a disabled endpoint"
        assert await disabled_events(container, endpoint_id) == [("gone", None)]
        await worker.drain()


async def test_an_endpoint_failing_for_days_is_disabled_and_staff_are_told(
    container: Container,
) -> None:
    async with receiving() as receiver, endpoints_made(container) as made:
        endpoint_id, _ = await register(container, made, receiver.url("/flaky"))
        receiver.behaviours["/flaky"] = Behaviour(status=500)
        await container.webhooks.on_event(event())
        worker = dispatcher(container, disable_after=timedelta(days=5))
        await rounds(worker)
        assert (await container.webhooks.get(endpoint_id)).enabled, "one failure is not days"
        since = datetime.now(UTC) - timedelta(days=5, minutes=1)
        await failing_since(container, endpoint_id, since)
        await make_due(container, endpoint_id)
        await rounds(worker)
        endpoint = await container.webhooks.get(endpoint_id)
        assert (endpoint.enabled, endpoint.disabled_reason) == (False, "failing")
        ((reason, when),) = await disabled_events(container, endpoint_id)
        assert reason == "failing"
        assert when is not None
        assert datetime.fromisoformat(when) == since
        # enabling it again forgets the failures; the pending delivery goes out again
        receiver.behaviours["/flaky"] = Behaviour(status=204)
        again = await container.webhooks.update(endpoint_id, enabled=True)
        assert (again.failing_since, again.disabled_reason) == (None, None)
        await make_due(container, endpoint_id)
        await rounds(worker)
        (row,) = await deliveries_of(container, endpoint_id)
        assert (row["status"], row["attempts"]) == ("succeeded", 3)
        await worker.drain()


async def test_a_success_clears_the_failing_clock(container: Container) -> None:
    async with receiving() as receiver, endpoints_made(container) as made:
        endpoint_id, _ = await register(container, made, receiver.url("/back"))
        receiver.behaviours["/back"] = Behaviour(status=500)
        await container.webhooks.on_event(event())
        worker = dispatcher(container)
        await rounds(worker)
        assert (await container.webhooks.get(endpoint_id)).failing_since is not None
        receiver.behaviours["/back"] = Behaviour(status=200)
        await make_due(container, endpoint_id)
        await rounds(worker)
        assert (await container.webhooks.get(endpoint_id)).failing_since is None
        await worker.drain()


async def test_redirects_are_never_followed(container: Container) -> None:
    async with receiving() as receiver, endpoints_made(container) as made:
        endpoint_id, _ = await register(container, made, receiver.url("/moved"))
        target = receiver.url("/elsewhere")
        receiver.behaviours["/moved"] = Behaviour(status=307, headers={"location": target})
        receiver.behaviours["/elsewhere"] = Behaviour(status=200)
        await container.webhooks.on_event(event())
        worker = dispatcher(container)
        await rounds(worker)
        (row,) = await deliveries_of(container, endpoint_id)
        assert (row["status"], row["last_status_code"]) == ("pending", 307)
        assert receiver.at("/elsewhere") == []
        await worker.drain()


async def test_replay_sends_a_delivery_again_with_the_same_webhook_id(
    container: Container,
) -> None:
    async with receiving() as receiver, endpoints_made(container) as made:
        endpoint_id, secret = await register(container, made, receiver.url("/again"))
        receiver.behaviours["/again"] = Behaviour(secret=secret)
        await container.webhooks.on_event(event())
        worker = dispatcher(container)
        await rounds(worker)
        (first,) = receiver.at("/again")
        replayed = await container.webhooks.replay(endpoint_id, first.webhook_id)
        assert replayed.delivery.status == "pending"
        await rounds(worker)
        second = receiver.at("/again")[1]
        assert second.verified is True
        assert (second.webhook_id, second.body) == (first.webhook_id, first.body)
        log = await container.webhooks.delivery(endpoint_id, first.webhook_id)
        assert (log.delivery.status, [a.number for a in log.attempts]) == ("succeeded", [1, 2])
        await worker.drain()


async def test_an_address_that_is_not_public_is_refused_at_send_time_too(
    container: Container,
) -> None:
    async def rebinding(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # a name that was public when registered, private now

    async with receiving() as receiver, endpoints_made(container) as made:
        endpoint_id, _ = await register(
            container, made, receiver.url("/inside", host="hooks.example.com")
        )
        receiver.behaviours["/inside"] = Behaviour(status=200)
        await container.webhooks.on_event(event())
        worker = dispatcher(container, guard=AddressGuard(allow_private=False, resolve=rebinding))
        await rounds(worker)
        (row,) = await deliveries_of(container, endpoint_id)
        assert row["status"] == "pending"
        assert row["last_status_code"] is None
        assert "not a public address" in row["last_error"]
        assert receiver.received == []
        await worker.drain()


SLOW_S = 3.0


async def test_a_slow_endpoint_does_not_slow_the_others(container: Container) -> None:
    async with receiving() as receiver, endpoints_made(container) as made:
        await register(container, made, receiver.url("/slow"))
        await register(container, made, receiver.url("/fast"))
        receiver.behaviours["/slow"] = Behaviour(delay_s=SLOW_S)
        receiver.behaviours["/fast"] = Behaviour()
        for _ in range(8):  # every event goes to both endpoints
            await container.webhooks.on_event(event())
        worker = dispatcher(container, concurrency=4, per_endpoint=2, timeout_s=5)
        runner = WorkerRunner([worker], idle=0.05)  # the loop `mercato worker` runs
        worker.wake = lambda: runner.wake(worker.name)
        started = time.monotonic()
        runner.start()
        try:
            fast = await receiver.wait_for("/fast", 8, within=SLOW_S)
            slow_so_far = len(receiver.at("/slow"))
            slow = await receiver.wait_for("/slow", 8, within=30)
        finally:
            await runner.stop()
            await worker.drain()
        fast_done = max(r.at for r in fast) - started
        slow_done = max(r.at for r in slow) - started
        # no healthy delivery waited for a slow answer: all came before the first one ended
        assert fast_done < SLOW_S, fast_done
        assert slow_so_far <= 2, "the slow endpoint holds no more than its share of the pool"
        assert slow_done > 3 * SLOW_S, slow_done  # 8 requests, 2 at a time


async def disabled_events(container: Container, endpoint_id: str) -> list[tuple[str, str | None]]:
    rows = await outbox_rows(container.db, endpoint_id)
    return [
        (payload["reason"], payload["failing_since"])
        for row in rows
        if row["event_type"] == "WebhookEndpointDisabled"
        for payload in [OutboxEvent.from_row(row).payload]
    ]


async def test_two_dispatchers_racing_send_each_delivery_once(
    container: Container, settings: Settings
) -> None:
    async with (
        receiving() as receiver,
        endpoints_made(container) as made,
        running(settings) as elsewhere,  # a second process on the same database
    ):
        endpoint_id, _ = await register(container, made, receiver.url("/raced"))
        receiver.behaviours["/raced"] = Behaviour()
        for _ in range(20):
            await container.webhooks.on_event(event())
        here = dispatcher(container, concurrency=16, per_endpoint=16)
        there = dispatcher(elsewhere, concurrency=16, per_endpoint=16)
        await asyncio.gather(rounds(here), rounds(there))
        await asyncio.gather(rounds(here), rounds(there))
        rows = await deliveries_of(container, endpoint_id)
        assert [r["status"] for r in rows] == ["succeeded"] * 20
        assert [r["attempts"] for r in rows] == [1] * 20
        sent = [r.webhook_id for r in receiver.at("/raced")]
        assert sorted(sent) == sorted(r["id"] for r in rows), "each sent exactly once"
        await here.drain()
        await there.drain()


async def test_a_delivery_left_claimed_by_a_dead_process_is_sent_when_its_lease_ends(
    container: Container,
) -> None:
    async with receiving() as receiver, endpoints_made(container) as made:
        endpoint_id, _ = await register(container, made, receiver.url("/orphan"))
        receiver.behaviours["/orphan"] = Behaviour()
        await container.webhooks.on_event(event())
        now = datetime.now(UTC)
        claimed = await container.transact(  # a process claims it, then dies before sending
            lambda uow: uow.repository(DeliveryRepository).claim(
                now=now, until=now + timedelta(seconds=1), limit=100, per_endpoint=100
            )
        )
        assert endpoint_id in {d.endpoint_id for d in claimed}
        worker = dispatcher(container)
        await rounds(worker)
        assert receiver.at("/orphan") == [], "not while the lease holds"
        await asyncio.sleep(1.1)
        await rounds(worker)
        assert len(receiver.at("/orphan")) == 1
        (row,) = await deliveries_of(container, endpoint_id)
        assert (row["status"], row["attempts"]) == ("succeeded", 1)
        await worker.drain()


async def test_an_endpoint_deleted_while_its_delivery_is_in_flight_leaves_nothing_behind(
    container: Container,
) -> None:
    async with receiving() as receiver:
        endpoint_id, _ = await register(container, [], receiver.url("/deleted"))
        receiver.behaviours["/deleted"] = Behaviour(delay_s=0.5)
        await container.webhooks.on_event(event())
        worker = dispatcher(container)
        await worker.run_once()
        await receiver.wait_for("/deleted", 1)
        await container.webhooks.delete(endpoint_id)  # while the request is in flight
        await worker.wait_idle()
        assert await deliveries_of(container, endpoint_id) == []
        await worker.drain()


async def test_an_event_no_endpoint_wants_costs_the_relay_no_statement(
    container: Container,
) -> None:
    counting = CountingDatabase(container.db)
    service = WebhooksService(
        Transactor(counting),  # type: ignore[arg-type]
        event_types=container.webhooks.event_types,
        guard=AddressGuard(allow_private=True),
        require_https=False,
    )
    await service.on_event(event("OrderPlaced"))  # reads the enabled endpoints once
    before = len(counting.sent)
    for _ in range(50):
        await service.on_event(event("NobodyListensToThis"))
    assert len(counting.sent) == before


async def test_an_endpoint_registered_in_another_process_gets_events_within_the_cache_bound(
    container: Container, settings: Settings
) -> None:
    async with (
        receiving() as receiver,
        running(settings) as elsewhere,
        endpoints_made(elsewhere) as made,
    ):
        await container.webhooks.on_event(event())  # this process now remembers the endpoints
        endpoint_id, _ = await register(elsewhere, made, receiver.url("/late"), ["OrderPlaced"])
        await asyncio.sleep(ENDPOINTS_CACHE_S)
        await container.webhooks.on_event(event("OrderPlaced"))
        assert len(await deliveries_of(container, endpoint_id)) == 1
