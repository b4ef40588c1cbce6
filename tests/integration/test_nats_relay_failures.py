"""The NATS relay when JetStream refuses or never answers: nothing reordered, nothing lost.

A scripted JetStream stands in for the broker so a chosen event's publish fails or its
acknowledgement never comes; it also records how many events of each aggregate were in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from nats.js.api import PubAck
from nats.js.errors import APIError

from mercato.bootstrap import Container
from mercato.platform import outbox as outbox_module
from mercato.platform.db import Database
from mercato.platform.jetstream import BrokerUnavailable, NatsRelay, RelayMetrics, StreamSettings
from tests.conftest import unique
from tests.integration.helpers import Pinged, outbox_rows
from tests.jetstream import skip_backlog, stream_settings

pytestmark = pytest.mark.anyio


class ScriptedJetStream:
    """Acknowledges every publish on the next loop turn, except those it is told to fail."""

    def __init__(self) -> None:
        self.refuse: set[tuple[str, int]] = set()
        self.silent: set[tuple[str, int]] = set()
        self.sent: list[tuple[str, int, str]] = []
        self.stored: list[tuple[str, int]] = []
        self.in_flight: dict[str, int] = {}
        self.most_in_flight = 0

    async def publish_async(
        self, subject: str, payload: bytes = b"", **options: Any
    ) -> asyncio.Future[PubAck]:
        env = orjson.loads(payload)
        key = (env["aggregate_id"], env["data"].get("n", -1))
        self.sent.append((*key, options["headers"]["Nats-Msg-Id"]))
        aggregate = key[0]
        self.in_flight[aggregate] = self.in_flight.get(aggregate, 0) + 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight[aggregate])
        future: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda _: self._landed(aggregate))
        asyncio.get_running_loop().call_soon(self._answer, future, key)
        return future

    def _landed(self, aggregate: str) -> None:
        self.in_flight[aggregate] -= 1

    def _answer(self, future: asyncio.Future[PubAck], key: tuple[str, int]) -> None:
        if key in self.silent or future.done():
            return  # the acknowledgement is lost
        if key in self.refuse:
            future.set_exception(APIError(code=503, description="stream offline"))
            return
        self.stored.append(key)
        future.set_result(PubAck(stream="S", seq=len(self.stored)))


class ScriptedLink:
    """A Link whose JetStream is the scripted one."""

    def __init__(self, js: ScriptedJetStream, settings: StreamSettings) -> None:
        self.js = js
        self.settings = settings
        self.connected = True

    async def jetstream(self) -> ScriptedJetStream:
        return self.js

    async def close(self) -> None:
        self.connected = False


def scripted_relay(db: Database, backend: str, **options: Any) -> tuple[NatsRelay, Any]:
    js = ScriptedJetStream()
    link = ScriptedLink(js, stream_settings("nats://127.0.0.1:1", ack_timeout_s=0.3))
    relay = NatsRelay(db, link, RelayMetrics(None), postgres=backend == "postgres", **options)  # type: ignore[arg-type]
    return relay, js


@pytest.fixture(autouse=True)
async def _fresh_stream(container: Container) -> None:
    await skip_backlog(container.db)


async def append(db: Database, events: list[tuple[str, int]]) -> None:
    async with db.transaction() as conn:
        await outbox_module.append(conn, [Pinged(thing_id=a, n=n) for a, n in events])


async def claims_of(db: Database, *aggregates: str) -> list[str | None]:
    return [(await outbox_rows(db, agg))[0]["nats_claim"] for agg in aggregates]


def order_of(js: ScriptedJetStream, aggregate: str) -> list[int]:
    return [n for agg, n in js.stored if agg == aggregate]


async def test_a_refused_publish_holds_back_its_aggregate_and_never_reorders_it(
    container: Container, backend: str
) -> None:
    a, b = unique("agg"), unique("agg")
    await append(container.db, [(a, 0), (b, 0), (a, 1), (b, 1), (a, 2)])
    relay, js = scripted_relay(container.db, backend)
    js.refuse = {(a, 1)}

    await relay.run_once()
    assert order_of(js, a) == [0]  # a's 2 never went out after its 1 failed
    assert order_of(js, b) == [0, 1]
    rows = await outbox_rows(container.db, a)
    assert [bool(r["nats_published_at"]) for r in rows] == [True, False, False]
    assert [r["nats_claim"] for r in rows] == [None, None, None]  # released at once

    js.refuse = set()
    await relay.run_once()
    assert order_of(js, a) == [0, 1, 2]
    assert js.most_in_flight == 1  # never two events of one aggregate in flight
    assert relay.metrics.failures.labels("rejected")._value.get() == 1


async def test_a_lost_acknowledgement_leaves_the_event_unmarked_and_it_is_sent_again_as_itself(
    container: Container, backend: str
) -> None:
    a = unique("agg")
    await append(container.db, [(a, 0), (a, 1)])
    relay, js = scripted_relay(container.db, backend)
    js.silent = {(a, 0)}

    with pytest.raises(BrokerUnavailable, match="acknowledged none"):
        await relay.publish_batch()
    rows = await outbox_rows(container.db, a)
    assert [r["nats_published_at"] for r in rows] == [None, None]
    assert relay.metrics.failures.labels("timeout")._value.get() >= 1

    js.silent = set()
    await relay.run_once()
    assert order_of(js, a) == [0, 1]
    ids = [msg_id for agg, n, msg_id in js.sent if agg == a and n == 0]
    assert len(ids) == 2
    assert ids[0] == ids[1]  # the same Nats-Msg-Id: JetStream drops the repeat
    assert all(r["nats_published_at"] for r in await outbox_rows(container.db, a))


async def test_a_connection_down_before_the_batch_claims_nothing(
    container: Container, backend: str
) -> None:
    a = unique("agg")
    await append(container.db, [(a, 0)])
    relay, js = scripted_relay(container.db, backend)
    relay.link.connected = False  # type: ignore[misc]

    with pytest.raises(BrokerUnavailable, match="connection is down"):
        await relay.publish_batch()
    assert js.sent == []
    (row,) = await outbox_rows(container.db, a)
    assert row["nats_published_at"] is None
    assert row["nats_claim"] is None


async def test_a_connection_lost_mid_wave_sends_no_more_and_releases_the_rest(
    container: Container, backend: str
) -> None:
    aggregates = [unique("agg") for _ in range(4)]
    await append(container.db, [(agg, n) for n in range(2) for agg in aggregates])
    relay, js = scripted_relay(container.db, backend)
    link = relay.link
    sent_before = js.publish_async

    async def flaky(subject: str, payload: bytes = b"", **options: Any) -> Any:
        future = await sent_before(subject, payload, **options)
        if len(js.sent) == 2:
            link.connected = False  # type: ignore[misc]
        return future

    js.publish_async = flaky  # type: ignore[method-assign]
    assert await relay.publish_batch() == 2  # the two sent before the loss were acknowledged
    rows = [r for agg in aggregates for r in await outbox_rows(container.db, agg)]
    assert sum(1 for r in rows if r["nats_published_at"]) == 2
    assert all(r["nats_claim"] is None for r in rows)
    # two of the first wave, then the next events of the two aggregates that went through
    assert relay.metrics.failures.labels("disconnected")._value.get() == 4

    link.connected = True  # type: ignore[misc]
    await relay.publish_batch()
    for agg in aggregates:
        assert order_of(js, agg) == [0, 1]


async def test_a_batch_claimed_ahead_is_freed_when_the_broker_goes_or_the_relay_closes(
    container: Container, backend: str
) -> None:
    a, b = unique("agg"), unique("agg")
    await append(container.db, [(a, 0), (b, 0)])
    relay, js = scripted_relay(container.db, backend)
    relay._prefetched = await relay._claim()  # as if claimed while the last batch was in flight
    assert all(await claims_of(container.db, a, b))

    relay.link.connected = False  # type: ignore[misc]
    with pytest.raises(BrokerUnavailable):
        await relay.publish_batch()
    assert await claims_of(container.db, a, b) == [None, None]

    relay.link.connected = True  # type: ignore[misc]
    relay._prefetched = await relay._claim()
    await relay.close()
    assert await claims_of(container.db, a, b) == [None, None]
    assert js.sent == []
