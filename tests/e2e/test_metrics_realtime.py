"""Long polls in the metrics: gauged while they wait, counted, and kept out of latency."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from tests.e2e.scrape import Series, parse, value
from tests.e2e.test_realtime import placed_order, tag
from tests.integration.follow import eventually

pytestmark = pytest.mark.anyio

ROUTE = "/v1/orders/{order_id}"


async def scrape(client: httpx.AsyncClient) -> Series:
    return parse((await client.get("/metrics")).text)


async def test_a_waiting_long_poll_is_gauged_counted_and_not_timed(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    clerk, owner, order = await placed_order(client, app)
    before = await scrape(client)
    assert value(before, "mercato_waiting_long_polls") == 0

    waiting = asyncio.create_task(
        client.get(
            f"/v1/orders/{order['id']}",
            params={"wait": 20},
            headers={**owner.auth, **tag(order["version"])},
        )
    )
    await eventually(lambda: app.state.notifier.waiting > 0, within=5)
    during = await scrape(client)
    assert value(during, "mercato_waiting_long_polls") == 1
    assert value(during, "mercato_open_streams") == 0

    confirmed = await client.post(f"/v1/orders/{order['id']}/confirm", headers=clerk.auth)
    assert confirmed.status_code == 200
    assert (await asyncio.wait_for(waiting, 5)).status_code == 200

    after = await scrape(client)
    assert value(after, "mercato_waiting_long_polls") == 0
    answered = {"method": "GET", "route": ROUTE, "status": "200"}
    assert (
        value(after, "http_requests_total", **answered)
        - value(before, "http_requests_total", **answered)
        == 1
    )
    timed = {"method": "GET", "route": ROUTE}
    assert value(after, "http_request_duration_seconds_count", **timed) == value(
        before, "http_request_duration_seconds_count", **timed
    ), "a long poll's wait is not a slow request"
