"""Two server processes on one PostgreSQL: a change through one wakes clients held by the other.

Each ``mercato serve`` process has its own notifier; the only path between them is PostgreSQL's
LISTEN/NOTIFY (their safety poll is ten seconds away, the bound here is one second).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from mercato.bootstrap import Container
from mercato.platform.security import Principal
from tests.conftest import make_settings, running
from tests.e2e.realtime import EventReader
from tests.e2e.server import Server, running_server
from tests.integration.follow import customer, placed_orders, staff

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def replicas(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL database")
    logs = tmp_path_factory.mktemp("replicas")
    with running_server(database_url, logs) as one, running_server(database_url, logs) as two:
        yield one, two


@pytest.fixture
async def system(database_url: str) -> AsyncIterator[Container]:
    """An in-process view of the same database, for arranging data and issuing tokens."""
    async with running(make_settings(database_url, database_pool_size=3)) as container:
        yield container


def auth(system: Container, principal: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {system.tokens.issue(principal)[0]}"}


async def test_a_change_through_one_server_wakes_a_long_poll_held_by_the_other(
    replicas: tuple[Server, Server], system: Container
) -> None:
    one, two = replicas
    clerk, owner = await staff(system), await customer(system)
    (order,) = await placed_orders(system, owner, clerk)
    current = {**auth(system, owner), "If-None-Match": f'"{order.version}"'}

    async with (
        httpx.AsyncClient(base_url=one.base_url, timeout=30) as first,
        httpx.AsyncClient(base_url=two.base_url, timeout=30) as second,
    ):
        polling = asyncio.create_task(
            first.get(f"/v1/orders/{order.id}", params={"wait": 20}, headers=current)
        )
        await asyncio.sleep(0.5)
        assert not polling.done()

        confirmed = await second.post(f"/v1/orders/{order.id}/confirm", headers=auth(system, clerk))
        committed = time.monotonic()
        answer = await asyncio.wait_for(polling, 5)
        woken = time.monotonic()

    assert confirmed.status_code == 200
    assert answer.status_code == 200
    assert answer.json()["status"] == "confirmed"
    assert woken - committed < 1.0


async def test_a_change_through_one_server_reaches_streams_held_by_the_other(
    replicas: tuple[Server, Server], system: Container
) -> None:
    one, two = replicas
    clerk, owner = await staff(system), await customer(system)
    (order,) = await placed_orders(system, owner, clerk)

    async with (
        httpx.AsyncClient(base_url=one.base_url, timeout=30) as first,
        httpx.AsyncClient(base_url=two.base_url, timeout=30) as second,
        first.stream("GET", f"/v1/orders/{order.id}/events", headers=auth(system, owner)) as mine,
        first.stream("GET", "/v1/events", headers=auth(system, clerk)) as everything,
    ):
        own_reader, all_reader = EventReader(mine), EventReader(everything)
        (placed,) = await own_reader.events(1)  # replayed: the stream is registered
        await all_reader.next()  # the retry hint: registered too

        shipped_at = []
        for action in ("confirm", "ship"):
            moved = await second.post(
                f"/v1/orders/{order.id}/{action}", headers=auth(system, clerk)
            )
            assert moved.status_code == 200
            shipped_at.append(time.monotonic())
        own = await own_reader.events(2, within=5)
        received = time.monotonic()
        every = await all_reader.events(2, within=5)

    assert placed.event == "OrderPlaced"
    assert [e.event for e in own] == ["OrderConfirmed", "OrderShipped"]
    assert [e.id for e in every] == [e.id for e in own]
    assert received - shipped_at[-1] < 1.0
