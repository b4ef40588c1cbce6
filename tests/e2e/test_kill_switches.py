"""Kill switches: flipped through one replica (or the command line), obeyed by every replica."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings, running
from tests.e2e.helpers import (
    SUCCESS_CARD,
    assert_problem,
    create_product,
    draft,
    register,
    staff_user,
)
from tests.e2e.server import running_server, server_env

pytestmark = pytest.mark.anyio

WITHIN_S = 5.0  # the switches are read again at most every 2 s


async def _eventually(
    probe: Callable[[], Awaitable[httpx.Response]], status: int
) -> tuple[httpx.Response, float]:
    """Repeat ``probe`` until it answers ``status``; the answer and how long it took."""
    started = time.monotonic()
    while True:
        answer = await probe()
        waited = time.monotonic() - started
        if answer.status_code == status or waited > WITHIN_S:
            return answer, waited
        await asyncio.sleep(0.1)


async def test_checkout_switched_off_on_one_replica_is_refused_by_both_until_switched_on(
    database_url: str, tmp_path: Path
) -> None:
    with (
        running_server(database_url, tmp_path) as one,
        running_server(database_url, tmp_path) as other,
    ):
        async with (
            running(make_settings(database_url)) as container,
            httpx.AsyncClient(base_url=one.base_url, timeout=10) as first,
            httpx.AsyncClient(base_url=other.base_url, timeout=10) as second,
        ):
            staff = await staff_user(first, container)
            customer = await register(second)
            product = await create_product(first, staff, stock=5)
            order = await draft(second, customer, [(product["id"], 2)])
            # both replicas have read the switches (on) before one of them flips checkout
            assert (await second.get("/metrics")).status_code == 200

            flipped = await first.put(
                "/v1/admin/switches/checkout",
                json={"enabled": False, "reason": "payment provider outage"},
                headers=staff.auth,
            )
            assert flipped.status_code == 200, flipped.text
            assert flipped.json()["enabled"] is False

            def place(client: httpx.AsyncClient) -> Callable[[], Awaitable[httpx.Response]]:
                return lambda: client.post(
                    f"/v1/orders/{order['id']}/place",
                    json={"card_number": SUCCESS_CARD},
                    headers={**customer.auth, "Idempotency-Key": f"place-{order['id']}"},
                )

            here = await place(first)()  # in the replica that flipped it: at once
            body = assert_problem(here, 503, "switched_off")
            assert body["switch"] == "checkout"
            assert "payment provider outage" in body["detail"]
            assert here.headers["retry-after"] == "30"

            # the other replica follows within its cache's bound: probed without a token, so a
            # probe that comes too early is refused (401) instead of placing the order
            def anonymous() -> Awaitable[httpx.Response]:
                return second.post(f"/v1/orders/{order['id']}/place", json={})

            probed, waited = await _eventually(anonymous, 503)
            assert_problem(probed, 503, "switched_off")
            assert waited < WITHIN_S
            assert_problem(await place(second)(), 503, "switched_off")
            metrics = (await second.get("/metrics")).text
            assert 'mercato_switch_enabled{switch="checkout"} 0.0' in metrics
            assert 'mercato_switch_refusals_total{switch="checkout"} 0.0' not in metrics

            # nothing was reserved or charged, and the other switches still let requests in
            stock = (await first.get(f"/v1/products/{product['id']}")).json()
            assert stock["available"] == 5
            payments = await second.get(f"/v1/orders/{order['id']}/payments", headers=customer.auth)
            assert payments.json() == []
            poll = await second.get(
                f"/v1/orders/{order['id']}", params={"wait": "0.2"}, headers=customer.auth
            )
            assert poll.status_code in (200, 304), poll.text

            switched_on = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "mercato", "switch", "on", "checkout", "--reason", "over"],
                env=server_env(database_url),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert switched_on.returncode == 0, switched_on.stderr
            assert "checkout        on" in switched_on.stdout

            # the refused attempt's Idempotency-Key was not stored: the same request now places
            placed, waited = await _eventually(place(second), 200)
            assert placed.status_code == 200, placed.text
            assert placed.json()["status"] == "placed"
            assert (await first.get(f"/v1/products/{product['id']}")).json()["available"] == 3


async def test_discount_codes_and_following_switch_off_on_their_own(
    database_url: str, tmp_path: Path
) -> None:
    with running_server(database_url, tmp_path) as server:
        async with (
            running(make_settings(database_url)) as container,
            httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
        ):
            staff = await staff_user(client, container)
            customer = await register(client)
            product = await create_product(client, staff, stock=5)
            order = await draft(client, customer, [(product["id"], 1)])
            for name in ("discount_codes", "realtime"):
                off = await client.put(
                    f"/v1/admin/switches/{name}",
                    json={"enabled": False, "reason": "load shedding"},
                    headers=staff.auth,
                )
                assert off.status_code == 200, off.text
            discount = await client.put(
                f"/v1/orders/{order['id']}/discount", json={"code": "WELCOME10"},
                headers=customer.auth,
            )  # fmt: skip
            assert assert_problem(discount, 503, "switched_off")["switch"] == "discount_codes"
            # nor can a new draft carry a code past the switch
            created = await client.post(
                "/v1/orders", json={"discount_code": "WELCOME10"}, headers=customer.auth
            )
            assert assert_problem(created, 503, "switched_off")["switch"] == "discount_codes"
            assert (await client.post("/v1/orders", json={}, headers=customer.auth)).is_success
            poll = await client.get(
                f"/v1/orders/{order['id']}", params={"wait": "5"}, headers=customer.auth
            )
            assert assert_problem(poll, 503, "switched_off")["switch"] == "realtime"
            stream = await client.get(f"/v1/orders/{order['id']}/events", headers=customer.auth)
            assert assert_problem(stream, 503, "switched_off")["switch"] == "realtime"
            # a plain read and removing a discount still work; a customer may not flip switches
            assert (await client.get(f"/v1/orders/{order['id']}", headers=customer.auth)).is_success
            removed = await client.delete(
                f"/v1/orders/{order['id']}/discount", headers=customer.auth
            )
            assert removed.status_code == 200, removed.text
            denied = await client.put(
                "/v1/admin/switches/checkout",
                json={"enabled": False, "reason": "x"},
                headers=customer.auth,
            )
            assert_problem(denied, 403)
            unknown = await client.put(
                "/v1/admin/switches/payments",
                json={"enabled": False, "reason": "x"},
                headers=staff.auth,
            )
            assert_problem(unknown, 422, field="name")
            for name in ("discount_codes", "realtime"):
                on = await client.put(
                    f"/v1/admin/switches/{name}",
                    json={"enabled": True, "reason": "over"},
                    headers=staff.auth,
                )
                assert on.status_code == 200, on.text
