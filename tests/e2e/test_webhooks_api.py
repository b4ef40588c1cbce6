"""The /v1/webhooks API over HTTP: staff manage endpoints and read and replay deliveries; the
secret is shown once; customers and strangers are refused; bad input is a problem naming the
field; outside dev and test no endpoint may point inside the shop's network; and an order
placed over HTTP reaches a real receiver, signed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tests.e2e.helpers import (
    SUCCESS_CARD,
    World,
    assert_problem,
    build_world,
    running_app,
    shared_world,
)
from tests.webhook_receiver import Behaviour, receiving

pytestmark = pytest.mark.anyio

UNKNOWN = "01900000-0000-7000-8000-000000000000"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(database_url) as application:
        yield application


@pytest.fixture(scope="module")
async def world(app: FastAPI) -> World:
    return await shared_world(app)


@pytest.fixture(scope="module")
async def guarded(database_url: str) -> AsyncIterator[FastAPI]:
    """An application that checks endpoint addresses, as staging and production do."""
    async with running_app(database_url, webhook_private_addresses=False) as application:
        yield application


def endpoint_body() -> dict[str, Any]:
    return {"url": "http://127.0.0.1:9/api", "event_types": ["OrderPlaced"], "enabled": False}


async def test_staff_register_read_list_change_and_delete_an_endpoint(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    staff = world.staff.auth
    created = await client.post("/v1/webhooks", json=endpoint_body(), headers=staff)
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["secret"].startswith("whsec_")
    assert (made["enabled"], made["disabled_reason"]) == (False, "staff")
    path = f"/v1/webhooks/{made['id']}"
    read = (await client.get(path, headers=staff)).json()
    assert "secret" not in read, "the secret is shown once, when the endpoint is created"
    assert read == {k: v for k, v in made.items() if k != "secret"}
    listed = await all_endpoints(client, staff)
    assert listed[made["id"]] == read
    changed = await client.patch(
        path,
        json={"url": "http://127.0.0.1:9/moved", "event_types": ["*"], "enabled": True},
        headers=staff,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["url"] == "http://127.0.0.1:9/moved"
    assert (changed.json()["enabled"], changed.json()["disabled_reason"]) == (True, None)
    assert (await client.delete(path, headers=staff)).status_code == 204
    gone = await client.get(path, headers=staff)
    assert_problem(gone, 404, "webhook_not_found")
    assert made["id"] not in await all_endpoints(client, staff)


async def all_endpoints(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/webhooks", params=params, headers=headers)).json()
        found |= {item["id"]: item for item in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def webhook_requests(client: httpx.AsyncClient, world: World, headers: dict[str, str]) -> list[Any]:
    path = f"/v1/webhooks/{world.webhook_id}"
    delivery = f"{path}/deliveries/{UNKNOWN}"
    return [
        client.post("/v1/webhooks", json=endpoint_body(), headers=headers),
        client.get("/v1/webhooks", headers=headers),
        client.get(path, headers=headers),
        client.patch(path, json={"enabled": True}, headers=headers),
        client.delete(path, headers=headers),
        client.get(f"{path}/deliveries", headers=headers),
        client.get(delivery, headers=headers),
        client.post(f"{delivery}/replay", headers=headers),
    ]


async def test_customers_are_forbidden_and_strangers_unauthenticated(
    client: httpx.AsyncClient, world: World
) -> None:
    for request in webhook_requests(client, world, world.owner.auth):
        await world.refused(request, 403, "staff_only")
    for request in webhook_requests(client, world, {}):
        await world.refused(request, 401, "unauthenticated")


async def test_bad_endpoints_are_refused_naming_the_field(
    client: httpx.AsyncClient, world: World
) -> None:
    staff = world.staff.auth
    for change, code, field in (
        ({"url": "ftp://example.com/h"}, "invalid_webhook_url", "url"),
        ({"url": "https://user:pw@example.com/h"}, "invalid_webhook_url", "url"),
        ({"url": "not a url"}, "invalid_webhook_url", "url"),
        ({"url": "https://example.com:99999/h"}, "invalid_webhook_url", "url"),
        ({"event_types": ["OrderPlaced", "OrderLost"]}, "unknown_event_type", "event_types[1]"),
        ({"event_types": []}, "validation_failed", "event_types"),
        ({"event_types": ["x" * 61]}, "validation_failed", "event_types[0]"),
        ({"enabled": "true"}, "validation_failed", "enabled"),
    ):
        body = {**endpoint_body(), **change}
        request = client.post("/v1/webhooks", json=body, headers=staff)
        await world.refused(request, 422, code, field=field)
        if "url" in change or "event_types" in change:
            path = f"/v1/webhooks/{world.webhook_id}"
            await world.refused(
                client.patch(path, json=change, headers=staff), 422, code, field=field
            )


async def test_unknown_endpoints_and_deliveries_are_404_and_bad_cursors_422(
    client: httpx.AsyncClient, world: World
) -> None:
    staff = world.staff.auth
    unknown = f"/v1/webhooks/{UNKNOWN}"
    for request in (
        client.get(unknown, headers=staff),
        client.patch(unknown, json={"enabled": True}, headers=staff),
        client.delete(unknown, headers=staff),
        client.get(f"{unknown}/deliveries", headers=staff),
        client.get(f"{unknown}/deliveries/{UNKNOWN}", headers=staff),
        client.post(f"{unknown}/deliveries/{UNKNOWN}/replay", headers=staff),
    ):
        await world.refused(request, 404, "webhook_not_found")
    mine = f"/v1/webhooks/{world.webhook_id}/deliveries/{UNKNOWN}"
    for request in (client.get(mine, headers=staff), client.post(f"{mine}/replay", headers=staff)):
        await world.refused(request, 404, "delivery_not_found")
    for path in ("/v1/webhooks", f"/v1/webhooks/{world.webhook_id}/deliveries"):
        request = client.get(path, params={"cursor": "bm90LWFuLWlk"}, headers=staff)
        await world.refused(request, 422, "invalid_cursor", field="cursor")


INSIDE = (
    "http://127.0.0.1/h",
    "http://127.1/h",
    "http://2130706433/h",  # 127.0.0.1 as one number: the resolver reads it so
    "http://0x7f000001/h",
    "http://localhost:8000/h",  # a name that resolves to loopback
    "http://0.0.0.0/h",
    "http://10.1.2.3/h",
    "http://172.16.0.1/h",
    "http://192.168.0.1/h",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/h",
    "http://[::]/h",
    "http://[fe80::1]/h",
    "http://[fd00::1]/h",
    "http://[::ffff:127.0.0.1]/h",
    "http://[::ffff:a9fe:a9fe]/h",  # 169.254.169.254, IPv4-mapped
    "http://[64:ff9b::7f00:1]/h",  # NAT64 around loopback
)


async def test_endpoints_inside_the_network_are_refused_outside_dev_and_test(
    guarded: FastAPI, world: World
) -> None:
    transport = httpx.ASGITransport(app=guarded)
    async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
        staff, path = world.staff.auth, f"/v1/webhooks/{world.webhook_id}"
        for url in INSIDE:
            body = {**endpoint_body(), "url": url}
            request = http.post("/v1/webhooks", json=body, headers=staff)
            problem = await world.refused(request, 422, "webhook_url_not_public", field="url")
            assert "not a public address" in problem["detail"], url
            request = http.patch(path, json={"url": url}, headers=staff)
            await world.refused(request, 422, "webhook_url_not_public", field="url")


async def test_an_order_placed_over_http_reaches_the_receiver_signed_and_can_be_replayed(
    database_url: str,
) -> None:
    async with (
        receiving() as receiver,
        running_app(database_url, run_workers=True) as live,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=live), base_url="http://t") as http,
    ):
        world = await build_world(http, live)
        staff = world.staff.auth
        body = {"url": receiver.url("/orders"), "event_types": ["OrderPlaced"]}
        created = (await http.post("/v1/webhooks", json=body, headers=staff)).json()
        path = f"/v1/webhooks/{created['id']}"
        try:
            receiver.behaviours["/orders"] = Behaviour(secret=created["secret"])
            place = f"/v1/orders/{world.order['id']}/place"
            placed = await http.post(
                place, json={"card_number": SUCCESS_CARD}, headers=world.owner.auth
            )
            assert placed.status_code == 200, placed.text
            (got,) = await receiver.wait_for("/orders", 1)
            assert got.verified is True
            message = orjson.loads(got.body)
            assert (message["type"], message["data"]["order_id"]) == (
                "OrderPlaced",
                world.order["id"],
            )
            log = await delivery_log(http, path, staff, got.webhook_id, attempts=1)
            assert (log["status"], log["last_status_code"]) == ("succeeded", 200)
            replayed = await http.post(f"{path}/deliveries/{got.webhook_id}/replay", headers=staff)
            assert replayed.status_code == 202, replayed.text
            again = (await receiver.wait_for("/orders", 2))[1]
            assert (again.webhook_id, again.body, again.verified) == (
                got.webhook_id,
                got.body,
                True,
            )
            log = await delivery_log(http, path, staff, got.webhook_id, attempts=2)
            assert [a["status_code"] for a in log["attempt_log"]] == [200, 200]
        finally:
            assert (await http.delete(path, headers=staff)).status_code == 204


async def delivery_log(
    http: httpx.AsyncClient, path: str, staff: dict[str, str], delivery_id: str, *, attempts: int
) -> dict[str, Any]:
    """The delivery as the API shows it, once ``attempts`` attempts are recorded."""
    for _ in range(100):
        listed = (await http.get(f"{path}/deliveries", headers=staff)).json()["items"]
        assert [d["id"] for d in listed] == [delivery_id]
        log: dict[str, Any] = (
            await http.get(f"{path}/deliveries/{delivery_id}", headers=staff)
        ).json()
        if log["attempts"] == attempts:
            return log
        await asyncio.sleep(0.05)
    raise AssertionError(f"no attempt {attempts} recorded: {log}")
