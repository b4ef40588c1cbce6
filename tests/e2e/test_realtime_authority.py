"""Held requests end with their account: long polls and event streams of deactivated, unknown
or demoted accounts are refused when they start and end while they are held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from tests.conftest import TEST_SECRET
from tests.e2e.helpers import (
    User,
    assert_problem,
    staff_user,
)
from tests.e2e.realtime import EventReader, live_client, placed_order

pytestmark = pytest.mark.anyio


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with live_client(database_url) as pair:
        yield pair


def _ghost(role: str) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {
        "sub": "01900000-0000-7000-8000-00000000dead",
        "role": role,
        "iss": "mercato",
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, TEST_SECRET, algorithm='HS256')}"}


async def test_held_requests_refuse_unknown_and_deactivated_accounts_before_holding(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    clerk, owner, order = await placed_order(client, app)
    boss = await staff_user(client, app.state.container)
    path = f"/v1/orders/{order['id']}"
    current = {"If-None-Match": f'"{order["version"]}"'}
    for role in ("staff", "customer"):
        ghost = _ghost(role)
        async with asyncio.timeout(5):
            polled = await client.get(path, params={"wait": 30}, headers={**ghost, **current})
            one = await client.get(f"{path}/events", headers=ghost)
            every = await client.get("/v1/events", headers=ghost)
            token = ghost["Authorization"].removeprefix("Bearer ")
            by_query = await client.get("/v1/events", params={"access_token": token})
        for answer in (polled, one, every, by_query):
            assert_problem(answer, 401, "unknown_account")

    for user in (clerk, owner):
        gone = await client.post(f"/v1/customers/{user.id}/deactivate", headers=boss.auth)
        assert gone.status_code == 200
    for user in (clerk, owner):
        async with asyncio.timeout(5):
            polled = await client.get(path, params={"wait": 30}, headers={**user.auth, **current})
            one = await client.get(f"{path}/events", headers=user.auth)
        assert_problem(polled, 403, "account_inactive")
        assert_problem(one, 403, "account_inactive")
    every = await client.get("/v1/events", headers=clerk.auth)
    assert_problem(every, 403, "account_inactive")
    assert app.state.notifier.held == 0


async def test_a_long_poll_held_while_its_account_is_deactivated_is_answered_403(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    clerk, owner, order = await placed_order(client, app)
    path = f"/v1/orders/{order['id']}"
    current = {"If-None-Match": f'"{order["version"]}"'}

    async def poll(user: User) -> httpx.Response:
        return await client.get(path, params={"wait": 3}, headers={**user.auth, **current})

    waiting = [asyncio.create_task(poll(user)) for user in (owner, clerk)]
    await asyncio.sleep(0.5)
    boss = await staff_user(client, app.state.container)
    for user in (owner, clerk):
        gone = await client.post(f"/v1/customers/{user.id}/deactivate", headers=boss.auth)
        assert gone.status_code == 200
    confirmed = await client.post(f"{path}/confirm", headers=boss.auth)  # wakes both polls
    assert confirmed.status_code == 200
    async with asyncio.timeout(5):
        for answer in await asyncio.gather(*waiting):
            assert_problem(answer, 403, "account_inactive")


async def test_an_owners_order_stream_ends_when_the_owner_is_deactivated(
    live: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = live
    _, owner, order = await placed_order(client, app)
    boss = await staff_user(client, app.state.container)
    async with client.stream("GET", f"/v1/orders/{order['id']}/events", headers=owner.auth) as r:
        assert r.status_code == 200
        reader = EventReader(r)
        (placed,) = await reader.events(1)
        assert placed.event == "OrderPlaced"
        gone = await client.post(f"/v1/customers/{owner.id}/deactivate", headers=boss.auth)
        assert gone.status_code == 200
        (ended,) = await reader.events(1, within=8)  # checked every fourth heartbeat
        assert await reader.until_end() == []
    assert ended.event == "reconnect"
    assert ended.json == {"reason": "account_inactive"}


async def test_no_event_reaches_a_staff_stream_after_its_account_is_deactivated(
    database_url: str,
) -> None:
    # heartbeats too rare to end the stream here: only what is delivered may end it
    async with live_client(database_url, realtime_heartbeat_s=120) as (app, client):
        clerk, _, _ = await placed_order(client, app)
        boss = await staff_user(client, app.state.container)
        async with client.stream("GET", "/v1/events", headers=clerk.auth) as r:
            assert r.status_code == 200
            reader = EventReader(r)
            gone = await client.post(f"/v1/customers/{clerk.id}/deactivate", headers=boss.auth)
            assert gone.status_code == 200
            await placed_order(client, app)  # an order the deactivated clerk must not see

            (ended,) = await reader.events(1, within=8)
            assert await reader.until_end() == []
        assert ended.event == "reconnect"
        assert ended.json == {"reason": "account_inactive"}
