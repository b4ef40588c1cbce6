"""Following an order over HTTP: short polls with ETags, long polls, Server-Sent Events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from mercato.bootstrap import Container
from tests.e2e.helpers import (
    create_product,
    draft,
    register,
    running_app,
    staff_user,
)
from tests.e2e.realtime import EventReader, live_client, placed_order
from tests.integration.follow import eventually

pytestmark = pytest.mark.anyio


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with live_client(database_url) as pair:
        yield pair


def tag(version: int) -> dict[str, str]:
    return {"If-None-Match": f'"{version}"'}


# -- short polling -----------------------------------------------------------------------------


async def test_an_order_carries_its_version_as_etag_and_answers_304_while_it_is_current(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    _, owner, order = await placed_order(client, app)
    path = f"/v1/orders/{order['id']}"

    fresh = await client.get(path, headers=owner.auth)
    assert fresh.status_code == 200
    assert fresh.headers["etag"] == f'"{order["version"]}"'
    assert fresh.headers["cache-control"] == "no-cache"

    for current in (
        f'"{order["version"]}"',
        f'W/"{order["version"]}"',
        f'"1", "{order["version"]}"',
        "*",
    ):
        unchanged = await client.get(path, headers={**owner.auth, "If-None-Match": current})
        assert unchanged.status_code == 304, current
        assert unchanged.content == b""
        assert unchanged.headers["etag"] == f'"{order["version"]}"'
        assert unchanged.headers["cache-control"] == "no-cache"

    stale = await client.get(path, headers={**owner.auth, **tag(order["version"] - 1)})
    assert stale.status_code == 200
    assert stale.json() == fresh.json()


@pytest.mark.parametrize(
    ("params", "headers", "field"),
    [
        ({"wait": "soon"}, {}, "wait"),
        ({"wait": "-1"}, {}, "wait"),
        ({"wait": "nan"}, {}, "wait"),
        ({}, {"If-None-Match": "version-3"}, "If-None-Match"),
        ({"wait": "5"}, {"If-None-Match": '"3", x'}, "If-None-Match"),
    ],
)
async def test_malformed_wait_and_if_none_match_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    app: FastAPI,
    params: dict[str, str],
    headers: dict[str, str],
    field: str,
) -> None:
    _, owner, order = await placed_order(client, app)

    refused = await client.get(
        f"/v1/orders/{order['id']}", params=params, headers={**owner.auth, **headers}
    )

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["field"] == field


# -- long polling ------------------------------------------------------------------------------


async def test_a_long_poll_behind_the_current_version_is_answered_at_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    _, owner, order = await placed_order(client, app)
    started = time.monotonic()

    answer = await client.get(
        f"/v1/orders/{order['id']}",
        params={"wait": 30},
        headers={**owner.auth, **tag(order["version"] - 1)},
    )

    assert time.monotonic() - started < 2
    assert answer.status_code == 200
    assert answer.json()["version"] == order["version"]
    assert answer.headers["etag"] == f'"{order["version"]}"'
    plain = await client.get(f"/v1/orders/{order['id']}", headers=owner.auth)
    assert answer.json() == plain.json()


async def test_a_long_poll_is_answered_when_the_order_changes(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    clerk, owner, order = await placed_order(client, app)

    async def poll() -> tuple[httpx.Response, float]:
        response = await client.get(
            f"/v1/orders/{order['id']}",
            params={"wait": 20},
            headers={**owner.auth, **tag(order["version"])},
        )
        return response, time.monotonic()

    waiting = asyncio.create_task(poll())
    await eventually(lambda: app.state.notifier.waiting > 0, within=5)
    await asyncio.sleep(0.2)
    assert not waiting.done()

    confirmed = await client.post(f"/v1/orders/{order['id']}/confirm", headers=clerk.auth)
    changed_at = time.monotonic()
    answer, answered_at = await asyncio.wait_for(waiting, 5)

    assert answer.status_code == 200
    assert answer.json()["status"] == "confirmed"
    assert answer.json()["version"] == confirmed.json()["version"]
    assert answered_at - changed_at < 1
    assert app.state.notifier.waiting == 0


async def test_a_long_poll_without_a_change_ends_with_304_when_its_wait_runs_out(
    database_url: str,
) -> None:
    async with (
        running_app(database_url, realtime_max_wait_s=0.5) as application,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://mercato.test"
        ) as client,
    ):
        _, owner, order = await placed_order(client, application)
        started = time.monotonic()

        answer = await client.get(
            f"/v1/orders/{order['id']}",
            params={"wait": 60},  # more than the maximum: cut to it
            headers={**owner.auth, **tag(order["version"])},
        )

        assert answer.status_code == 304
        assert answer.content == b""
        assert answer.headers["etag"] == f'"{order["version"]}"'
        assert 0.4 < time.monotonic() - started < 3
        assert application.state.notifier.waiting == 0


async def test_a_long_poll_sees_a_change_without_an_event_when_its_wait_runs_out(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    container: Container = app.state.container
    clerk = await staff_user(client, container)
    product = await create_product(client, clerk)
    owner = await register(client)
    order = await draft(client, owner, [(product["id"], 1)])

    async def edit_later() -> None:
        await asyncio.sleep(0.2)
        edited = await client.put(
            f"/v1/orders/{order['id']}/lines/{product['id']}",
            json={"quantity": 2},
            headers=owner.auth,
        )
        assert edited.status_code == 200

    editing = asyncio.create_task(edit_later())
    answer = await client.get(
        f"/v1/orders/{order['id']}",
        params={"wait": 1},
        headers={**owner.auth, **tag(order["version"])},
    )
    await editing

    assert answer.status_code == 200  # never a 304 for a version that is no longer current
    assert answer.json()["lines"][0]["quantity"] == 2


async def test_past_the_cap_new_waits_get_503_with_retry_after_and_it_recovers(
    database_url: str,
) -> None:
    async with (
        running_app(database_url, realtime_max_waiting=2) as application,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://mercato.test"
        ) as client,
    ):
        _, owner, order = await placed_order(client, application)
        current = {**owner.auth, **tag(order["version"])}
        path = f"/v1/orders/{order['id']}"
        held = [
            asyncio.create_task(client.get(path, params={"wait": 1.5}, headers=current))
            for _ in range(2)
        ]
        await eventually(lambda: application.state.notifier.waiting >= 2, within=5)

        refused = await client.get(path, params={"wait": 10}, headers=current)
        assert refused.status_code == 503
        assert refused.json()["code"] == "too_many_waiting"
        assert int(refused.headers["retry-after"]) >= 1
        behind = await client.get(path, params={"wait": 10}, headers={**owner.auth, **tag(1)})
        assert behind.status_code == 200  # a client that is behind needs no slot

        assert [r.status_code for r in await asyncio.gather(*held)] == [304, 304]
        again = await client.get(path, params={"wait": 0.2}, headers=current)
        assert again.status_code == 304


# -- authorization -------------------------------------------------------------------------------


async def test_a_customer_cannot_follow_another_customers_order_or_every_order(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    _, owner, order = await placed_order(client, app)
    stranger = await register(client)
    path = f"/v1/orders/{order['id']}"

    polled = await client.get(path, params={"wait": 5}, headers={**stranger.auth, **tag(1)})
    assert polled.status_code == 404
    streamed = await client.get(f"{path}/events", headers=stranger.auth)
    assert streamed.status_code == 404
    assert streamed.json()["code"] == "order_not_found"
    everything = await client.get("/v1/events", headers=owner.auth)
    assert everything.status_code == 403
    assert everything.headers["content-type"] == "application/problem+json"
    for anonymous in (f"{path}/events", "/v1/events"):
        assert (await client.get(anonymous)).status_code == 401
    assert (await client.get(path, params={"wait": 5})).status_code == 401
    forged = await client.get("/v1/events", params={"access_token": "forged"})
    assert forged.status_code == 401
    assert app.state.notifier.held == 0


# -- event streams --------------------------------------------------------------------------------


async def test_a_stream_receives_placed_confirmed_shipped_delivered_in_order_and_ends(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    clerk, owner, order = await placed_order(client, app)
    path = f"/v1/orders/{order['id']}"

    async with client.stream("GET", f"{path}/events", headers=owner.auth) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        reader = EventReader(response)
        assert (await reader.next()).retry == 1500
        (placed,) = await reader.events(1)
        for action in ("confirm", "ship", "deliver"):
            moved = await client.post(f"{path}/{action}", headers=clerk.auth)
            assert moved.status_code == 200
        live_events = await reader.events(3)
        assert await reader.until_end() == []  # a delivered order's stream ends

    events = [placed, *live_events]
    assert [e.event for e in events] == [
        "OrderPlaced",
        "OrderConfirmed",
        "OrderShipped",
        "OrderDelivered",
    ]
    ids = [int(e.id or 0) for e in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4
    assert [e.json["version"] for e in events] == sorted(e.json["version"] for e in events)
    assert all(e.json["order_id"] == order["id"] and "occurred_at" in e.json for e in events)

    final = await client.get(
        f"{path}/events", headers={**owner.auth, "Last-Event-ID": str(ids[-1])}
    )
    assert final.status_code == 204  # tells EventSource to stop reconnecting


async def test_a_reconnect_with_last_event_id_loses_nothing_and_repeats_nothing(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    clerk, owner, order = await placed_order(client, app)
    path = f"/v1/orders/{order['id']}"

    async with client.stream("GET", f"{path}/events", headers=owner.auth) as response:
        reader = EventReader(response)
        placed, confirmed = await asyncio.gather(
            reader.events(2), client.post(f"{path}/confirm", headers=clerk.auth)
        )
    seen = [e.id for e in placed]
    assert [e.event for e in placed] == ["OrderPlaced", "OrderConfirmed"]

    # while the client is away
    assert (await client.post(f"{path}/ship", headers=clerk.auth)).status_code == 200

    resumed = {**owner.auth, "Last-Event-ID": str(seen[-1])}
    async with client.stream("GET", f"{path}/events", headers=resumed) as response:
        reader = EventReader(response)
        (missed,) = await reader.events(1)
        assert (await client.post(f"{path}/deliver", headers=clerk.auth)).status_code == 200
        (delivered,) = await reader.events(1)
        assert await reader.until_end() == []

    assert [missed.event, delivered.event] == ["OrderShipped", "OrderDelivered"]
    assert int(seen[-1] or 0) < int(missed.id or 0) < int(delivered.id or 0)
    assert confirmed.status_code == 200


async def test_the_staff_stream_follows_every_order_and_can_filter_by_type(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    clerk, owner, first = await placed_order(client, app)
    _, _, second = await placed_order(client, app)

    query = {"type": "OrderShipped,OrderConfirmed"}
    async with (
        client.stream("GET", "/v1/events", headers=clerk.auth) as everything,
        client.stream("GET", "/v1/events", params=query, headers=clerk.auth) as some,
    ):
        all_reader, some_reader = EventReader(everything), EventReader(some)
        await all_reader.next()  # the retry hint: the stream is open
        await some_reader.next()
        for order, action in ((first, "confirm"), (second, "confirm"), (second, "cancel")):
            moved = await client.post(f"/v1/orders/{order['id']}/{action}", headers=clerk.auth)
            assert moved.status_code == 200, moved.text
        every = await all_reader.events(3)
        filtered = await some_reader.events(2)

    assert [(e.json["order_id"], e.event) for e in every] == [
        (first["id"], "OrderConfirmed"),
        (second["id"], "OrderConfirmed"),
        (second["id"], "OrderCancelled"),
    ]
    assert [e.id for e in filtered] == [e.id for e in every[:2]]

    # resuming the staff stream replays what came after the given id, in order
    resumed = {**clerk.auth, "Last-Event-ID": every[0].id or ""}
    async with client.stream("GET", "/v1/events", headers=resumed) as response:
        again = await EventReader(response).events(2)
    assert [e.id for e in again] == [e.id for e in every[1:]]

    unknown = await client.get("/v1/events", params={"type": "OrderTeleported"}, headers=clerk.auth)
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "type"
    malformed = await client.get("/v1/events", headers={**clerk.auth, "Last-Event-ID": "abc"})
    assert malformed.status_code == 422
    assert malformed.json()["field"] == "Last-Event-ID"
    assert owner.id != clerk.id


async def test_streams_send_heartbeats_and_accept_a_token_in_the_query_for_eventsource(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    _, owner, order = await placed_order(client, app)

    url = f"/v1/orders/{order['id']}/events"
    async with client.stream("GET", url, params={"access_token": owner.token}) as response:
        assert response.status_code == 200
        reader = EventReader(response)
        blocks = [await reader.next(within=3) for _ in range(3)]  # retry, OrderPlaced, heartbeat

    assert blocks[0].retry == 1500
    assert blocks[1].event == "OrderPlaced"
    assert blocks[2].comments == ["keep-alive"]
    assert app.state.notifier.streams in (0, 1)  # the server may not have seen the close yet


async def test_shutdown_ends_streams_with_a_reconnect_event_and_long_polls_at_once(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    _, owner, order = await placed_order(client, app)
    path = f"/v1/orders/{order['id']}"

    async with client.stream("GET", f"{path}/events", headers=owner.auth) as response:
        reader = EventReader(response)
        await reader.events(1)
        polling = asyncio.create_task(
            client.get(path, params={"wait": 30}, headers={**owner.auth, **tag(order["version"])})
        )
        await eventually(lambda: app.state.notifier.waiting > 0, within=5)

        app.state.notifier.shutdown()

        (reconnect,) = await reader.events(1, within=2)
        assert await reader.until_end(within=2) == []
        polled = await asyncio.wait_for(polling, 2)

    assert reconnect.event == "reconnect"
    assert reconnect.json == {"reason": "shutdown"}
    assert reconnect.retry is not None
    assert reconnect.retry <= 1500
    assert polled.status_code == 304
    assert polled.headers["connection"] == "close"
    refused = await client.get(f"{path}/events", headers=owner.auth)
    assert refused.status_code == 503
    assert "retry-after" in refused.headers


async def test_staff_follow_any_order_and_lose_the_staff_stream_with_their_account(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    clerk, _, order = await placed_order(client, app)
    boss = await staff_user(client, app.state.container)

    async with client.stream("GET", f"/v1/orders/{order['id']}/events", headers=clerk.auth) as r:
        assert r.status_code == 200
        (placed,) = await EventReader(r).events(1)
    assert placed.event == "OrderPlaced"

    async with client.stream("GET", "/v1/events", headers=clerk.auth) as response:
        reader = EventReader(response)
        await reader.next()
        gone = await client.post(f"/v1/customers/{clerk.id}/deactivate", headers=boss.auth)
        assert gone.status_code == 200
        (ended,) = await reader.events(1, within=8)  # checked every fourth heartbeat
        assert await reader.until_end() == []

    assert ended.event == "reconnect"
    assert ended.json == {"reason": "account_inactive"}
    refused = await client.get("/v1/events", headers=clerk.auth)
    assert refused.status_code == 403
    assert refused.json()["code"] == "account_inactive"


async def test_the_stream_routes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()

    one = document["paths"]["/v1/orders/{order_id}/events"]["get"]
    every = document["paths"]["/v1/events"]["get"]
    assert "text/event-stream" in one["responses"]["200"]["content"]
    assert {p["name"] for p in every["parameters"]} >= {"type", "Last-Event-ID", "access_token"}
    read = document["paths"]["/v1/orders/{order_id}"]["get"]
    assert {p["name"] for p in read["parameters"]} >= {"wait", "If-None-Match"}
    assert "304" in read["responses"]
