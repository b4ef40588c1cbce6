"""The fault-injection switch: absent by default, refused in production, staff-only when on."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from mercato.bootstrap import Container
from mercato.config import ConfigurationError, Settings
from tests.conftest import TEST_SECRET
from tests.e2e.helpers import register, running_app, staff_user
from tests.e2e.scrape import parse, value

pytestmark = pytest.mark.anyio


def test_the_production_profile_refuses_fault_injection() -> None:
    safe = {
        "env": "production",
        "database_url": "postgresql://mercato@db:5432/mercato",
        "token_secret": TEST_SECRET,
        "allow_sandbox_payments_in_production": True,
    }
    assert Settings(**safe).fault_injection is False  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="MERCATO_FAULT_INJECTION"):
        Settings(**safe, fault_injection=True)  # type: ignore[arg-type]


async def test_without_the_setting_the_switch_does_not_exist(client: httpx.AsyncClient) -> None:
    assert (await client.put("/_faults", json={"status": 500})).status_code == 404
    assert (await client.get("/_faults")).status_code == 404


@pytest.fixture
async def drill_app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(database_url, fault_injection=True) as application:
        yield application


@pytest.fixture
async def drill(drill_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=drill_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
        yield http


async def test_injected_errors_are_served_counted_and_cleared(
    drill_app: FastAPI, drill: httpx.AsyncClient
) -> None:
    container: Container = drill_app.state.container
    staff = await staff_user(drill, container)
    customer = await register(drill)
    assert (await drill.put("/_faults", json={"status": 500})).status_code == 401
    assert (
        await drill.put("/_faults", json={"status": 500}, headers=customer.auth)
    ).status_code == 403
    for bad in ({"status": 404}, {"ratio": 0}, {"ratio": 2}, {"delay_ms": -1}, {"oops": 1}):
        refused = await drill.put("/_faults", json=bad, headers=staff.auth)
        assert refused.status_code == 422, bad
        assert refused.headers["content-type"] == "application/problem+json"

    set_ = await drill.put("/_faults", json={"status": 503}, headers=staff.auth)
    assert set_.status_code == 200
    assert set_.json()["fault"] == {"status": 503, "ratio": 1.0, "delay_ms": 0}
    failed = await drill.get("/v1/products")
    assert failed.status_code == 503
    assert failed.json()["code"] == "injected_fault"
    assert (await drill.get("/readyz")).status_code == 200  # probes are never faulted
    scraped = await drill.get("/metrics")
    assert scraped.status_code == 200
    series = parse(scraped.text)
    assert value(series, "http_requests_total", route="/v1/products", status="503") == 1

    assert (await drill.delete("/_faults", headers=staff.auth)).status_code == 204
    assert (await drill.get("/v1/products")).status_code == 200
    assert (await drill.get("/_faults", headers=staff.auth)).json() == {"fault": None}


async def test_an_injected_delay_slows_requests_down(
    drill_app: FastAPI, drill: httpx.AsyncClient
) -> None:
    staff = await staff_user(drill, drill_app.state.container)
    await drill.put("/_faults", json={"delay_ms": 300}, headers=staff.auth)
    started = time.perf_counter()
    slow = await drill.get("/v1/products")
    assert slow.status_code == 200
    assert time.perf_counter() - started >= 0.3
    series = parse((await drill.get("/metrics")).text)
    assert (
        value(series, "http_request_duration_seconds_bucket", route="/v1/products", le="0.25") == 0
    )
    assert (
        value(series, "http_request_duration_seconds_bucket", route="/v1/products", le="0.5") == 1
    )
