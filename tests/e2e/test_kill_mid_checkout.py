"""A server killed in the middle of checkouts loses no order and charges no order twice.

Shoppers place orders with Idempotency-Keys; the server is killed (SIGKILL, no draining) while
those requests are in flight, started again, and every shopper retries with the same key until
the answer is final. Afterwards every order is placed exactly once, with one captured payment,
and the stock adds up. Leases and the reconciler's grace are short, so what the killed process
left behind (claimed keys, pending payments, reservations) is recovered within the test.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mercato.bootstrap import Container
from mercato.customers import Role
from mercato.kernel.values import Address
from mercato.orders import NewLine
from mercato.platform.security import Principal
from mercato.platform.security import Role as TokenRole
from tests.conftest import make_settings, running, unique
from tests.e2e.server import Server, start_server, stop_server, wait_ready

pytestmark = pytest.mark.anyio

SUCCESS_CARD = "4242424242424242"
ADDRESS = Address(street="Hauptstrasse 1", city="Berlin", country="DE")
RECOVERY = {
    "MERCATO_IDEMPOTENCY_LEASE_S": "1",
    "MERCATO_CHECKOUT_GRACE_S": "1",
    "MERCATO_IDEMPOTENCY_WAIT_S": "0.2",
}


@pytest.fixture
async def system(database_url: str) -> AsyncIterator[Container]:
    async with running(make_settings(database_url, database_pool_size=5)) as container:
        yield container


def _serve(database_url: str, log_dir: Path) -> Server:
    workers = 1 if database_url.startswith("sqlite") else 2
    server = start_server(database_url, log_dir, workers=workers, **RECOVERY)
    wait_ready(server)
    return server


def _kill_hard(server: Server) -> None:
    """SIGKILL the server and its serving processes at once, as losing the pod would."""
    for process in [server.process.pid, *_children(server.process.pid)]:
        os.kill(process, signal.SIGKILL)
    server.process.wait()


async def _place_until_final(
    http: httpx.AsyncClient, order_id: str, headers: dict[str, str], *, within: float = 40
) -> httpx.Response:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            answer = await http.post(
                f"/v1/orders/{order_id}/place", json={"card_number": SUCCESS_CARD}, headers=headers
            )
            if answer.status_code < 500 and "retry-after" not in answer.headers:
                return answer
        except httpx.TransportError:
            pass
        assert loop.time() < deadline, f"order {order_id} never got a final answer"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("round_", range(3))
async def test_orders_placed_across_a_killed_server_are_placed_once_and_charged_once(
    database_url: str, system: Container, tmp_path: Path, round_: int
) -> None:
    staff = await system.customers.register(
        email=f"{unique('s')}@example.com", password="staff password", name="S", role=Role.STAFF
    )
    product = await system.catalog.create_product(
        actor_id=staff.id,
        sku=unique("K").upper(),
        name="Killed",
        description="",
        price_amount=1200,
        currency="EUR",
        weight_grams=100,
        initial_stock=100,
    )
    shoppers = []
    for _ in range(20):
        customer = await system.customers.register(
            email=f"{unique('c')}@example.com", password="customer password", name="C"
        )
        principal = Principal(customer.id, TokenRole.CUSTOMER)
        order = await system.orders.create(
            principal, lines=[NewLine(product.id, 2)], shipping_address=ADDRESS
        )
        headers = {
            "Authorization": f"Bearer {system.tokens.issue(principal)[0]}",
            "Idempotency-Key": unique("kill"),
        }
        shoppers.append((order.id, headers))

    server = _serve(database_url, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            inflight = [
                asyncio.create_task(
                    http.post(
                        f"/v1/orders/{order_id}/place",
                        json={"card_number": SUCCESS_CARD},
                        headers=headers,
                    )
                )
                for order_id, headers in shoppers
            ]
            await asyncio.sleep(random.uniform(0.005, 0.06))
            _kill_hard(server)
            await asyncio.gather(*inflight, return_exceptions=True)
    finally:
        stop_server(server)

    server = _serve(database_url, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            finals = await asyncio.gather(
                *(_place_until_final(http, oid, headers) for oid, headers in shoppers)
            )
    finally:
        stop_server(server)

    for (order_id, _), answer in zip(shoppers, finals, strict=True):
        # placed by this retry or replayed; or, when the kill fell between the checkout's last
        # commit and storing its answer, told that the order is no longer a draft
        if answer.status_code != 200:
            assert answer.json()["code"] == "order_not_draft", answer.text
            assert answer.json()["order_status"] == "placed"
        order = await system.orders.get_unchecked(order_id)
        assert order is not None, order_id
        assert order.status.value == "placed", order_id
        statuses = [p.status.value for p in await system.payments.list_for_order(order_id)]
        assert statuses.count("captured") == 1, (order_id, statuses)
        assert set(statuses) <= {"captured", "failed"}, (order_id, statuses)
    now = await system.catalog.product_view(product.id, staff=True)
    assert (now["available"], now["reserved"], now["sold"]) == (100 - 40, 0, 40)


def test_serving_processes_stop_when_their_supervisor_is_killed(
    database_url: str, tmp_path: Path
) -> None:
    server = start_server(database_url, tmp_path, workers=2)
    children: list[int] = []
    try:
        wait_ready(server)
        pid = server.process.pid
        children = [
            c for c in _children(pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
        ]
        assert len(children) == 2
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()

        deadline = time.monotonic() + 15
        while any(_alive(c) for c in children):
            assert time.monotonic() < deadline, "serving processes outlived their supervisor"
            time.sleep(0.1)
    finally:
        stop_server(server)
        for orphan in filter(_alive, children):
            os.kill(orphan, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for its reaper does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
