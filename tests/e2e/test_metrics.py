"""/metrics: RED metrics by route template, business metrics from committed events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from mercato.bootstrap import Container
from mercato.platform.db import TransientError
from mercato.platform.metrics import LONG_LIVED, Metrics
from mercato.platform.uow import UnitOfWork
from mercato.platform.workers import WorkerRunner
from tests.e2e.helpers import (
    DECLINED_CARD,
    SUCCESS_CARD,
    create_product,
    draft,
    register,
    running_app,
    staff_user,
)
from tests.e2e.scrape import Series, parse, value

pytestmark = pytest.mark.anyio


async def scrape(client: httpx.AsyncClient) -> Series:
    got = await client.get("/metrics")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/plain")
    return parse(got.text)


async def test_requests_are_counted_and_timed_by_route_template(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    for _ in range(3):
        missing = await client.get(f"/v1/products/{uuid.uuid4()}")
        assert missing.status_code == 404
    after = await scrape(client)
    route = "/v1/products/{product_id}"
    labels = {"method": "GET", "route": route, "status": "404"}
    grown = value(after, "http_requests_total", **labels) - value(
        before, "http_requests_total", **labels
    )
    assert grown == 3
    timed = value(after, "http_request_duration_seconds_count", method="GET", route=route)
    assert timed - value(before, "http_request_duration_seconds_count", route=route) == 3
    assert value(after, "http_requests_in_flight") == 1  # the scrape itself


async def test_a_scan_of_random_urls_adds_no_new_series(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def scan() -> None:
        for _ in range(40):
            junk = uuid.uuid4().hex
            await client.get(f"/{junk}/{junk[:6]}.php")
            await client.post(f"/v1/{junk}", json={})
            await client.get(f"/v1/orders/{junk}/nothing-here")

    await scan()  # the first scan may add the '<unmatched>' series once
    await scrape(client)  # and the first scrape the series of /metrics itself
    first = await scrape(client)
    await scan()
    second = await scrape(client)
    assert set(second) - set(first) == set()
    routes = {dict(labels).get("route") for _, labels in second} - {None}
    templates = {*app.openapi()["paths"], "/metrics"}
    assert routes <= templates | {"<unmatched>"}, routes - templates
    assert "<unmatched>" in routes
    unmatched = value(second, "http_requests_total", route="<unmatched>", status="404")
    assert unmatched >= 240


async def test_business_metrics_follow_committed_orders_and_payments(
    client: httpx.AsyncClient, container_of_app: Container
) -> None:
    before = await scrape(client)
    staff = await staff_user(client, container_of_app)
    customer = await register(client)
    product = await create_product(client, staff, stock=1, price=2500)

    declined = await draft(client, customer, [(product["id"], 1)])
    refused = await client.post(
        f"/v1/orders/{declined['id']}/place",
        json={"card_number": DECLINED_CARD},
        headers=customer.auth,
    )
    assert refused.status_code == 402
    placed = await client.post(
        f"/v1/orders/{declined['id']}/place",
        json={"card_number": SUCCESS_CARD},
        headers=customer.auth,
    )
    assert placed.status_code == 200, placed.text
    total = placed.json()["totals"]["total"]["amount"]

    sold_out = await draft(client, customer, [(product["id"], 1)])
    out = await client.post(
        f"/v1/orders/{sold_out['id']}/place",
        json={"card_number": SUCCESS_CARD},
        headers=customer.auth,
    )
    assert out.status_code == 409
    assert out.json()["code"] == "out_of_stock"
    cancelled = await client.post(f"/v1/orders/{sold_out['id']}/cancel", headers=customer.auth)
    assert cancelled.status_code == 200

    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("mercato_orders_total", event="placed") == 1
    assert grew("mercato_orders_total", event="cancelled") == 1
    assert grew("mercato_order_value_count", currency="EUR") == 1
    assert grew("mercato_order_value_sum", currency="EUR") == pytest.approx(total / 100)
    assert grew("mercato_payments_total", outcome="captured") == 1
    assert grew("mercato_payments_total", outcome="declined") == 1
    assert grew("mercato_payments_total", outcome="failed") == 0
    assert grew("mercato_domain_errors_total", code="out_of_stock") == 1
    assert grew("mercato_domain_errors_total", code="payment_declined") == 1
    assert value(after, "mercato_outbox_backlog") >= 1  # workers are off: nothing published
    assert value(after, "mercato_outbox_oldest_age_seconds") > 0


async def test_idempotent_replays_are_counted(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {
        "email": f"{uuid.uuid4().hex[:10]}@example.com",
        "password": "long password 1",
        "name": "R",
    }
    first = await client.post("/v1/customers", json=body, headers=key)
    again = await client.post("/v1/customers", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    after = await scrape(client)
    assert (
        value(after, "mercato_idempotent_replays_total")
        - value(before, "mercato_idempotent_replays_total")
        == 1
    )
    created = {"method": "POST", "route": "/v1/customers", "status": "201"}
    assert (
        value(after, "http_requests_total", **created)
        - value(before, "http_requests_total", **created)
        == 2
    )  # the replay is labelled with its route, although it never reached the router


async def test_a_long_lived_request_is_counted_but_kept_out_of_latency(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # The gauges of waiting long polls and open streams follow the notifier's own counts
    # (tests/e2e/test_metrics_realtime.py); here: a request marked long-lived is not timed.
    entered = asyncio.Event()
    release = asyncio.Event()

    async def waiting(request: Request) -> dict[str, str]:
        request.scope["state"][LONG_LIVED] = True  # as a held long poll marks its request
        entered.set()
        await release.wait()
        return {"ok": "yes"}

    app.add_api_route("/test/long-poll", waiting)
    task = asyncio.create_task(client.get("/test/long-poll"))
    await asyncio.wait_for(entered.wait(), 5)
    release.set()
    assert (await task).status_code == 200
    after = await scrape(client)
    assert value(after, "http_requests_total", route="/test/long-poll") == 1
    assert value(after, "http_request_duration_seconds_count", route="/test/long-poll") == 0


async def test_transaction_retries_are_counted(container_of_app: Container) -> None:
    metrics = container_of_app.metrics
    before = metrics.transaction_retries._value.get()
    attempts = 0

    async def flaky(uow: UnitOfWork) -> int:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise TransientError("deadlock detected")
        return attempts

    assert await container_of_app.transact(flaky) == 3
    assert metrics.transaction_retries._value.get() - before == 2


async def test_worker_runs_and_failures_are_counted() -> None:
    metrics = Metrics()

    class Flaky:
        name = "flaky"
        calls = 0

        async def run_once(self) -> int:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("boom")
            return 0

    worker = Flaky()
    runner = WorkerRunner([worker], idle=0.01, max_backoff=0.01, on_run=metrics.worker_run)
    runner.start()
    for _ in range(500):
        if worker.calls >= 3:
            break
        await asyncio.sleep(0.01)
    await runner.stop()
    series = parse((await metrics.render())[0].decode())
    assert value(series, "mercato_worker_runs_total", worker="flaky", outcome="failed") == 1
    assert value(series, "mercato_worker_runs_total", worker="flaky", outcome="ok") >= 2


@pytest.fixture
def container_of_app(app: FastAPI) -> Container:
    container: Container = app.state.container
    return container


@pytest.fixture
async def quiet_app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(database_url, metrics_enabled=False) as application:
        yield application


async def test_metrics_can_be_switched_off(quiet_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=quiet_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
        assert (await http.get("/v1/products")).status_code == 200
        assert (await http.get("/metrics")).status_code == 404
    metrics: Metrics = quiet_app.state.metrics
    series = parse((await metrics.render())[0].decode())
    assert value(series, "http_requests_total") == 0
