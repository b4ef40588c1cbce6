"""Events to a 3-node JetStream cluster that loses a node, then all of them, under load.

Orders keep being placed over HTTP while the stream's leader is killed, then the whole cluster
for 30 s, then the cluster comes back. Checkout never fails (the outbox buffers), and in the end
every committed event is in the stream once, in order per aggregate. The timeline is printed
(``pytest -s``) and quoted in docs/events.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nats
import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.platform.db import Database, sql
from mercato.platform.jetstream import NatsRelay, claims, event_id
from mercato.platform.outbox import OutboxEvent, outbox
from tests.conftest import make_settings, running
from tests.e2e.helpers import SUCCESS_CARD, create_product, draft, register, running_app, staff_user
from tests.jetstream import read_stream, schema_errors, skip_backlog, stream_settings
from tests.natsservers import NatsNode, nats_cluster, urls

pytestmark = pytest.mark.anyio

LEADER_DOWN_AT, CLUSTER_DOWN_AT, CLUSTER_UP_AT, LOAD_ENDS_AT = 5.0, 15.0, 45.0, 55.0
CATCH_UP_LIMIT_S = 60.0

_LAST_SEQ = sql(sa.select(sa.func.coalesce(sa.func.max(outbox.c.seq), 0)))
_SINCE = sql(sa.select(outbox).where(outbox.c.seq > sa.bindparam("seq")).order_by(outbox.c.seq))


@dataclass
class Load:
    started: float = field(default_factory=time.monotonic)
    placed: list[float] = field(default_factory=list)
    failed: list[tuple[float, int, str]] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.started

    def note(self, what: str) -> None:
        self.timeline.append((round(self.now(), 1), what))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[NatsNode]]:
    with nats_cluster(tmp_path, size=3) as nodes:
        yield nodes


async def _start_line(database_url: str) -> int:
    async with running(make_settings(database_url)) as container:
        await skip_backlog(container.db)
        async with container.db.connection() as conn:
            return int(await conn.fetchval(_LAST_SEQ))


async def _place_orders(
    client: httpx.AsyncClient, app: object, load: Load, stop: asyncio.Event
) -> None:
    container: Container = app.state.container  # type: ignore[attr-defined]
    staff = await staff_user(client, container)
    product = await create_product(client, staff, stock=1_000_000)
    customer = await register(client)
    while not stop.is_set():
        order = await draft(client, customer, [(product["id"], 1)])
        placed = await client.post(
            f"/v1/orders/{order['id']}/place",
            json={"card_number": SUCCESS_CARD},
            headers=customer.auth,
        )
        if placed.status_code == 200 and placed.json()["status"] == "placed":
            load.placed.append(load.now())
        else:
            load.failed.append((load.now(), placed.status_code, placed.text[:200]))
        await asyncio.sleep(0.02)


async def _leader(servers: str, stream: str) -> str:
    nc = await nats.connect(servers=servers.split(","), connect_timeout=5)
    try:
        info = await nc.jetstream(timeout=10).stream_info(stream)
        assert info.cluster is not None
        assert info.cluster.leader
        return info.cluster.leader
    finally:
        await nc.close()


async def _until(check: object, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} within {limit_s} s")


async def _script(nodes: list[NatsNode], servers: str, stream: str, load: Load) -> None:
    """Kill the leader, then every node, then bring them all back, on the timeline above."""
    await asyncio.sleep(LEADER_DOWN_AT - load.now())
    leader = await _leader(servers, stream)
    next(n for n in nodes if n.name == leader).kill()
    load.note(f"stream leader {leader} killed")
    await asyncio.sleep(CLUSTER_DOWN_AT - load.now())
    for node in nodes:
        node.kill()
    load.note("whole cluster killed")
    await asyncio.sleep(CLUSTER_UP_AT - load.now())
    for node in nodes:
        await asyncio.to_thread(node.start)
    load.note("cluster restarted")


async def test_events_survive_a_node_and_a_whole_cluster_down_while_checkout_goes_on(
    cluster: list[NatsNode], database_url: str
) -> None:
    servers = urls(cluster)
    start_seq = await _start_line(database_url)
    settings = stream_settings(servers, replicas=3)
    overrides = {
        "run_workers": True,
        "events_nats_url": servers,
        "events_nats_stream": settings.name,
        "events_nats_subject_prefix": settings.subject_prefix,
        "events_nats_replicas": 3,
        "events_nats_ack_timeout_s": 2.0,
        "events_nats_lease_s": 10.0,
    }
    async with running_app(database_url, **overrides) as app:
        db: Database = app.state.container.db
        relay = app.state.container.nats_relay
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as client:
            await _until(lambda: _has_leader(servers, settings.name), 30, "a stream leader")
            load, stop = Load(), asyncio.Event()
            load.note("load starts; stream has a leader")
            orders = asyncio.create_task(_place_orders(client, app, load, stop))
            watch = asyncio.create_task(_watch_backlog(db, load, stop))
            await _script(cluster, servers, settings.name, load)
            await asyncio.sleep(LOAD_ENDS_AT - load.now())
            stop.set()
            await orders
            await watch
            load.note(f"load ends: {len(load.placed)} orders placed, {len(load.failed)} failed")
            await _until(lambda: _caught_up(db), CATCH_UP_LIMIT_S, "the relay caught up")
            load.note("every event acknowledged by JetStream")
        async with db.connection() as conn:
            rows = await conn.fetch(_SINCE, seq=start_seq)
        failures = relay.metrics.failures
        load.note(
            "relay failures: "
            + ", ".join(
                f"{r}={failures.labels(r)._value.get():g}"
                for r in ("timeout", "disconnected", "rejected")
            )
            + f"; duplicates dropped by JetStream: {relay.metrics.duplicates._value.get():g}"
        )
    print("\n".join(f"{at:6.1f} s  {what}" for at, what in load.timeline))

    assert load.failed == []  # checkout never failed because the broker was down
    outage = [t for t in load.placed if CLUSTER_DOWN_AT + 1 < t < CLUSTER_UP_AT]
    assert len(outage) > 20, "orders kept being placed while the whole cluster was down"
    received = await read_stream(servers, settings)
    envelopes = [env for _, _, env in received.messages if env["sequence"] > start_seq]
    ids = [env["id"] for env in envelopes]
    assert len(ids) == len(set(ids)), "an event is in the stream twice"
    events = [OutboxEvent.from_row(r) for r in rows]
    assert sorted(ids) == sorted(event_id(e) for e in events), "an event is missing"
    assert {e["type"] for e in envelopes} >= {"OrderPlaced", "PaymentCaptured"}
    assert [err for env in envelopes for err in schema_errors(env)] == []  # docs/events/v1
    seen: dict[str, int] = {}
    for env in envelopes:  # stream order
        assert env["sequence"] > seen.get(env["aggregate_id"], 0), "an aggregate was reordered"
        seen[env["aggregate_id"]] = env["sequence"]


def _relay_summary(relay: NatsRelay) -> str:
    failures = relay.metrics.failures
    counts = ", ".join(
        f"{r}={failures.labels(r)._value.get():g}" for r in ("timeout", "disconnected", "rejected")
    )
    return (
        f"relay failures: {counts}; duplicates dropped: {relay.metrics.duplicates._value.get():g}"
    )


async def _watch_backlog(db: Database, load: Load, stop: asyncio.Event) -> None:
    """Note the largest backlog, and when it was worked off after the cluster came back."""
    largest, drained = 0, False
    while not stop.is_set():
        count, _ = await claims.lag(db)
        largest = max(largest, count)
        if not drained and load.now() > CLUSTER_UP_AT and count <= 5:
            drained = True
            load.note(f"backlog worked off (largest: {largest} events)")
        await asyncio.sleep(0.25)
    if not drained:
        load.note(f"backlog not worked off while the load ran (largest: {largest} events)")


async def _has_leader(servers: str, stream: str) -> bool:
    try:
        return bool(await _leader(servers, stream))
    except Exception:
        return False


async def _caught_up(db: Database) -> bool:
    count, _ = await claims.lag(db)
    return count == 0
