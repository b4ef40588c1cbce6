"""Correct under concurrency: no overselling, no double charge, safe retries, no lost edit.

These drive a real ``mercato serve`` process (two worker processes on PostgreSQL, one on
SQLite, which serialises writers) with many concurrent HTTP clients, then check the invariants
directly in the database. A longer random workload, on two servers and a worker, is in
test_workload.py.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import cast

import httpx
import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.catalog import Product
from mercato.catalog.store import reservations
from mercato.customers import Role
from mercato.kernel.values import Address
from mercato.orders import NewLine
from mercato.orders.store import lines, orders
from mercato.platform import outbox
from mercato.platform.db import sql
from mercato.platform.security import Principal
from mercato.platform.security import Role as TokenRole
from tests.conftest import make_settings, running, unique
from tests.e2e.server import Server, running_server

pytestmark = pytest.mark.anyio

SUCCESS_CARD = "4242424242424242"
ADDRESS = Address(street="Hauptstrasse 1", city="Berlin", country="DE")


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workers = 1 if database_url.startswith("sqlite") else 2
    with running_server(database_url, tmp_path_factory.mktemp("srv"), workers=workers) as srv:
        yield srv


@pytest.fixture
async def system(database_url: str) -> AsyncIterator[Container]:
    """An in-process view of the same database, for arranging data and checking invariants."""
    async with running(make_settings(database_url, database_pool_size=5)) as container:
        yield container


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=250)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as client:
        yield client


async def _staff(system: Container) -> Principal:
    staff = await system.customers.register(
        email=f"{unique('s')}@example.com", password="staff password", name="S", role=Role.STAFF
    )
    return Principal(staff.id, TokenRole.STAFF)


async def _customer(system: Container) -> tuple[Principal, dict[str, str]]:
    customer = await system.customers.register(
        email=f"{unique('c')}@example.com", password="customer password", name="C"
    )
    principal = Principal(customer.id, TokenRole.CUSTOMER)
    token, _ = system.tokens.issue(principal)
    return principal, {"Authorization": f"Bearer {token}"}


def _auth(system: Container, principal: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {system.tokens.issue(principal)[0]}"}


async def _product(system: Container, staff: Principal, stock: int, price: int = 1000) -> Product:
    return await system.catalog.create_product(
        actor_id=staff.user_id,
        sku=unique("P").upper(),
        name="Contended",
        description="",
        price_amount=price,
        currency="EUR",
        weight_grams=100,
        initial_stock=stock,
    )


async def _rows(system: Container, query: sa.sql.Select) -> list[dict[str, object]]:  # type: ignore[type-arg]
    async with system.db.connection() as conn:
        return [dict(r) for r in await conn.fetch(sql(query))]


async def _stock(system: Container, product_id: str) -> tuple[int, int, int]:
    shown = await system.catalog.product_view(product_id, staff=True)
    available, reserved, sold = (cast(int, shown[key]) for key in ("available", "reserved", "sold"))
    return available, reserved, sold


async def _drain_outbox(system: Container, within: float = 20) -> None:
    """Wait until the server's relay has published every event (refunds happen there)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (await outbox.backlog(system.db))[0]:
        assert loop.time() < deadline, "the outbox did not drain"
        await asyncio.sleep(0.1)


async def test_two_hundred_shoppers_race_for_the_last_ten_units(
    system: Container, http: httpx.AsyncClient
) -> None:
    staff = await _staff(system)
    product = await _product(system, staff, stock=10)
    shoppers = [await _customer(system) for _ in range(200)]
    orders = [
        await system.orders.create(
            principal, lines=[NewLine(product.id, 1)], shipping_address=ADDRESS
        )
        for principal, _ in shoppers
    ]

    async def buy(order_id: str, headers: dict[str, str]) -> httpx.Response:
        return await http.post(
            f"/v1/orders/{order_id}/place", json={"card_number": SUCCESS_CARD}, headers=headers
        )

    answers = await asyncio.gather(
        *(buy(order.id, headers) for order, (_, headers) in zip(orders, shoppers, strict=True))
    )

    outcomes = Counter(
        (r.status_code, r.json().get("code", r.json().get("status"))) for r in answers
    )
    assert outcomes == {(200, "placed"): 10, (409, "out_of_stock"): 190}, outcomes
    assert await _stock(system, product.id) == (0, 0, 10)
    from mercato.catalog.store import reservations  # the invariant check reads the tables
    from mercato.payments.store import payments

    active = await _rows(
        system,
        sa.select(reservations).where(
            reservations.c.product_id == product.id, reservations.c.state == "active"
        ),
    )
    assert active == []
    charged = await _rows(
        system, sa.select(payments).where(payments.c.order_id.in_([o.id for o in orders]))
    )
    assert Counter(p["status"] for p in charged) == {"captured": 10}


async def test_fifty_repeats_of_one_request_with_one_key_charge_once(
    system: Container, http: httpx.AsyncClient
) -> None:
    staff = await _staff(system)
    product = await _product(system, staff, stock=5, price=2500)
    principal, headers = await _customer(system)
    order = await system.orders.create(
        principal, lines=[NewLine(product.id, 2)], shipping_address=ADDRESS
    )
    keyed = {**headers, "Idempotency-Key": unique("key")}

    answers = await asyncio.gather(
        *(
            http.post(
                f"/v1/orders/{order.id}/place", json={"card_number": SUCCESS_CARD}, headers=keyed
            )
            for _ in range(50)
        )
    )

    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 49
    payments = await system.payments.list_for_order(order.id)
    assert [p.status.value for p in payments] == ["captured"]
    assert await _stock(system, product.id) == (3, 0, 2)
    mine = await system.orders.list_orders(
        principal, status=None, customer_id=None, before=None, limit=10
    )
    assert [o.id for o in mine.items] == [order.id]


async def test_cancel_and_ship_race_and_exactly_one_wins(
    system: Container, http: httpx.AsyncClient
) -> None:
    staff = await _staff(system)
    staff_headers = _auth(system, staff)
    product = await _product(system, staff, stock=40)
    principal, headers = await _customer(system)
    winners: Counter[str] = Counter()
    for _ in range(15):
        order = await system.orders.create(
            principal, lines=[NewLine(product.id, 2)], shipping_address=ADDRESS
        )
        await system.orders.place(principal, order.id, card_number=SUCCESS_CARD)
        await system.orders.confirm(staff, order.id)

        ship, cancel = await asyncio.gather(
            http.post(f"/v1/orders/{order.id}/ship", headers=staff_headers),
            http.post(f"/v1/orders/{order.id}/cancel", json={"reason": "race"}, headers=headers),
        )

        assert sorted([ship.status_code, cancel.status_code]) == [200, 409], (
            ship.text,
            cancel.text,
        )
        loser = ship if ship.status_code == 409 else cancel
        assert loser.json()["code"] in {"invalid_transition", "order_conflict"}
        final = await system.orders.get(staff, order.id)
        winners[final.status.value] += 1
        assert final.status.value == ("shipped" if ship.status_code == 200 else "cancelled")
    await _drain_outbox(system)
    available, reserved, sold = await _stock(system, product.id)
    assert reserved == 0
    assert sold == 2 * winners["shipped"]
    assert available == 40 - sold
    all_orders = await system.orders.list_orders(
        staff, status=None, customer_id=principal.user_id, before=None, limit=100
    )
    for order in all_orders.items:
        statuses = [p.status.value for p in await system.payments.list_for_order(order.id)]
        assert statuses == (["refunded"] if order.status.value == "cancelled" else ["captured"])


async def test_concurrent_line_additions_to_one_draft_all_stay(
    system: Container, http: httpx.AsyncClient
) -> None:
    staff = await _staff(system)
    products = [await _product(system, staff, stock=100, price=100 + i) for i in range(8)]
    principal, headers = await _customer(system)
    for _ in range(6):
        draft = await system.orders.create(principal, shipping_address=ADDRESS)

        answers = await asyncio.gather(
            *(
                http.post(
                    f"/v1/orders/{draft.id}/lines",
                    json={"product_id": p.id, "quantity": 1},
                    headers=headers,
                )
                for p in products
            )
        )

        assert [r.status_code for r in answers] == [200] * 8, [r.text for r in answers]
        final = await system.orders.get(principal, draft.id)
        assert sorted(final.lines) == sorted(p.id for p in products)
        assert final.version == 1 + 8
        assert final.totals is not None
        assert final.totals.subtotal.amount == sum(p.price.amount for p in products)


async def test_a_quantity_change_racing_a_place_never_undercharges(
    system: Container, http: httpx.AsyncClient
) -> None:
    staff = await _staff(system)
    product = await _product(system, staff, stock=500, price=1000)
    principal, headers = await _customer(system)
    placed: list[str] = []
    for _ in range(25):
        draft = await system.orders.create(
            principal, lines=[NewLine(product.id, 1)], shipping_address=ADDRESS
        )

        edit, place = await asyncio.gather(
            http.put(
                f"/v1/orders/{draft.id}/lines/{product.id}", json={"quantity": 3}, headers=headers
            ),
            http.post(
                f"/v1/orders/{draft.id}/place", json={"card_number": SUCCESS_CARD}, headers=headers
            ),
        )

        assert place.status_code == 200, place.text
        assert edit.status_code in (200, 409), edit.text
        if edit.status_code == 409:
            assert edit.json()["code"] in {"checkout_in_progress", "order_not_draft"}
        placed.append(draft.id)
        order = place.json()
        units = sum(ln["quantity"] for ln in order["lines"])
        assert order["totals"]["subtotal"]["amount"] == 1000 * units
        if edit.status_code == 200:
            # acknowledged before the checkout began, so the order was placed with it
            assert units == 3

    stored = await _rows(system, sa.select(lines).where(lines.c.order_id.in_(placed)))
    for row in await _rows(system, sa.select(orders).where(orders.c.id.in_(placed))):
        units = sum(int(ln["quantity"]) for ln in stored if ln["order_id"] == row["id"])  # type: ignore[call-overload]
        assert row["subtotal"] == 1000 * units
    committed = await _rows(
        system,
        sa.select(reservations).where(
            reservations.c.order_id.in_(placed), reservations.c.state == "committed"
        ),
    )
    assert sum(int(r["quantity"]) for r in committed) == sum(  # type: ignore[call-overload]
        int(ln["quantity"])  # type: ignore[call-overload]
        for ln in stored
    )
    product_now = await system.catalog.product_view(product.id, staff=True)
    assert product_now["sold"] == sum(int(ln["quantity"]) for ln in stored)  # type: ignore[call-overload]
    assert product_now["reserved"] == 0
