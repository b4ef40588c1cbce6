"""The console's event stream (``/console/events``): the all-orders stream for the session's
staff account, carried by the session cookie, ending with that account."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.helpers import User, staff_user
from tests.e2e.realtime import EventReader, live_client, placed_order

pytestmark = pytest.mark.anyio

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def _sign_in(client: httpx.AsyncClient, user: User) -> None:
    """Sign in to the console; the client keeps the session cookie."""
    page = await client.get("/console/login")
    nonce = CSRF.search(page.text)
    assert nonce is not None
    signed = await client.post(
        "/console/login",
        data={"email": user.email, "password": "staff password 1", "csrf": nonce.group(1)},
    )
    assert signed.status_code == 303, signed.text
    assert client.cookies.get("mercato_console")


async def test_the_console_stream_delivers_orders_to_the_session_and_ends_with_its_account(
    database_url: str,
) -> None:
    async with live_client(database_url, realtime_heartbeat_s=120) as (app, client):
        clerk = await staff_user(client, app.state.container)
        boss = await staff_user(client, app.state.container)
        await _sign_in(client, clerk)
        async with client.stream("GET", "/console/events") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            reader = EventReader(r)
            _, _, order = await placed_order(client, app)
            (placed,) = await reader.events(1)
            assert placed.event == "OrderPlaced"
            assert placed.json["order_id"] == order["id"]

            gone = await client.post(f"/v1/customers/{clerk.id}/deactivate", headers=boss.auth)
            assert gone.status_code == 200
            await placed_order(client, app)  # an order the deactivated clerk must not see
            (ended,) = await reader.events(1, within=8)
            assert await reader.until_end() == []
        assert ended.event == "reconnect"
        assert ended.json == {"reason": "account_inactive"}
        again = await client.get("/console/events")
        assert again.status_code == 403
