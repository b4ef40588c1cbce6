"""Edits that wait for an order's lock see what the lock holder wrote.

Under PostgreSQL's READ COMMITTED, a statement that waits for a row lock sees the locked row as
the lock holder committed it, but every other row as it was when the statement began. These
tests make edits queue on one order's lock from a real ``mercato serve`` (two processes on
PostgreSQL), many times over, and then check that no acknowledged edit was lost and that no
order was placed at a price other than its lines'.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

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
    async with running(make_settings(database_url, database_pool_size=5)) as container:
        yield container


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
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
    return principal, {"Authorization": f"Bearer {system.tokens.issue(principal)[0]}"}


async def _product(system: Container, staff: Principal, *, stock: int, price: int) -> Product:
    return await system.catalog.create_product(
        actor_id=staff.user_id,
        sku=unique("R").upper(),
        name="Raced",
        description="",
        price_amount=price,
        currency="EUR",
        weight_grams=100,
        initial_stock=stock,
    )


async def _fetch(system: Container, query: sa.sql.Select) -> list[dict[str, object]]:  # type: ignore[type-arg]
    async with system.db.connection() as conn:
        return [dict(r) for r in await conn.fetch(sql(query))]


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

    stored = await _fetch(system, sa.select(lines).where(lines.c.order_id.in_(placed)))
    for row in await _fetch(system, sa.select(orders).where(orders.c.id.in_(placed))):
        units = sum(int(ln["quantity"]) for ln in stored if ln["order_id"] == row["id"])  # type: ignore[call-overload]
        assert row["subtotal"] == 1000 * units
    committed = await _fetch(
        system,
        sa.select(reservations).where(
            reservations.c.order_id.in_(placed), reservations.c.state == "committed"
        ),
    )
    assert sum(int(r["quantity"]) for r in committed) == sum(  # type: ignore[call-overload]
        int(ln["quantity"])  # type: ignore[call-overload]
        for ln in stored
    )
    product_now = await system.catalog.get_product(product.id, include_inactive=True)
    assert product_now.sold == sum(int(ln["quantity"]) for ln in stored)  # type: ignore[call-overload]
    assert product_now.reserved == 0
