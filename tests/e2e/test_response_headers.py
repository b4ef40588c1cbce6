"""Headers every response carries, whatever answered it, and the token response's own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings
from tests.e2e.helpers import (
    RouteCase,
    World,
    register,
    routes,
    running_app,
    shared_world,
    staff_user,
)
from tests.e2e.realtime import EventReader, serving

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(database_url, max_body_bytes=1024) as application:

        @application.get("/v1/test-only/broken")
        async def broken() -> None:
            raise RuntimeError("a bug")

        yield application


@pytest.fixture(scope="module")
async def world(app: FastAPI) -> World:
    return await shared_world(app)


def assert_nosniff(response: httpx.Response) -> None:
    assert response.headers.get_list("x-content-type-options") == ["nosniff"], (
        response.status_code,
        response.headers,
    )


@pytest.mark.parametrize("case", routes())
async def test_every_route_answers_with_nosniff_with_or_without_a_token(
    client: httpx.AsyncClient, world: World, case: RouteCase
) -> None:
    if case.path.endswith("/events"):  # a held stream; its refusals are checked here
        answer = await case.send(client, world)
        assert answer.status_code == 401
        assert_nosniff(answer)
        return
    for headers in ({}, world.staff.auth):
        assert_nosniff(await case.send(client, world, headers=headers))


async def test_errors_of_every_kind_answer_with_nosniff(
    client: httpx.AsyncClient, world: World
) -> None:
    order = f"/v1/orders/{world.order['id']}"
    for answer, status in (
        (await client.get("/v1/nothing-here"), 404),
        (await client.delete("/v1/products"), 405),
        (
            await client.post(
                "/v1/customers", content=b"{", headers={"content-type": "application/json"}
            ),
            400,
        ),
        (await client.post("/v1/customers", json={"email": "x" * 2000}), 413),
        (await client.post("/v1/customers", json={}), 422),
        (await client.get(order, params={"wait": 5}), 401),
        (await client.get(order, headers=world.other.auth), 404),
        (await client.get("/v1/events", headers=world.owner.auth), 403),
    ):
        assert answer.status_code == status, answer.text
        assert_nosniff(answer)


async def test_an_unexpected_error_answers_with_nosniff(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
        answer = await http.get("/v1/test-only/broken")
    assert answer.status_code == 500
    assert answer.json()["code"] == "internal_error"
    assert_nosniff(answer)


async def test_probes_and_metrics_answer_with_nosniff(client: httpx.AsyncClient) -> None:
    for path in ("/livez", "/readyz", "/startupz", "/metrics"):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert_nosniff(answer)


async def test_the_token_response_may_not_be_cached(client: httpx.AsyncClient) -> None:
    user = await register(client)
    answer = await client.post(
        "/v1/auth/token", json={"email": user.email, "password": "correct horse battery"}
    )
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["pragma"] == "no-cache"
    assert_nosniff(answer)


async def test_an_open_event_stream_and_a_long_poll_answer_with_nosniff(database_url: str) -> None:
    settings = make_settings(database_url, realtime_heartbeat_s=1)
    async with serving(settings) as (app, url), httpx.AsyncClient(base_url=url, timeout=10) as http:
        clerk = await staff_user(http, app.state.container)
        async with http.stream("GET", "/v1/events", headers=clerk.auth) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert_nosniff(stream)
            await EventReader(stream).next()
        polled = await http.get(
            "/v1/orders/01900000-0000-7000-8000-000000000000",
            params={"wait": 1},
            headers={**clerk.auth, "If-None-Match": '"1"'},
        )
        assert polled.status_code == 404
        assert_nosniff(polled)
