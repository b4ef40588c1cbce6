"""Orders over HTTP: editing a draft and its totals, listing, staff filters, request ids."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mercato.platform.db_postgres import PgConnection
from mercato.platform.db_sqlite import SqliteConnection
from tests.e2e.helpers import (
    ADDRESS,
    SUCCESS_CARD,
    User,
    assert_problem,
    create_product,
    draft,
    register,
    running_app,
    staff_user,
)

pytestmark = pytest.mark.anyio
UNKNOWN = "01900000-0000-7000-8000-000000000000"
FRANCE = {"street": "1 rue de Rivoli", "city": "Paris", "postal_code": "75001", "country": "fr"}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(database_url) as application:
        yield application


@pytest.fixture
async def staff(client: httpx.AsyncClient, app: FastAPI) -> User:
    return await staff_user(client, app.state.container)


def totals(order: dict[str, Any]) -> tuple[int, ...]:
    """(subtotal, discount, shipping, tax, total) in minor units."""
    t = order["totals"]
    return tuple(t[k]["amount"] for k in ("subtotal", "discount", "shipping", "tax", "total"))


class Draft:
    """A customer's draft, changed step by step, checking the ETag follows the version."""

    def __init__(self, client: httpx.AsyncClient, owner: User, order: dict[str, Any]) -> None:
        self.client, self.owner, self.order = client, owner, order

    async def change(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        etag = f'"{self.order["version"]}"'
        response = await self.client.request(
            method,
            f"/v1/orders/{self.order['id']}{path}",
            headers={**self.owner.auth, "If-Match": etag},
            **kwargs,
        )
        assert response.status_code == 200, response.text
        changed: dict[str, Any] = response.json()
        assert changed["version"] == self.order["version"] + 1
        assert response.headers["etag"] == f'"{changed["version"]}"'
        self.order = changed
        return changed

    def lines(self) -> list[tuple[str, int, int]]:
        return [
            (ln["product_id"], ln["quantity"], ln["total"]["amount"]) for ln in self.order["lines"]
        ]


async def test_editing_a_draft_reprices_it_at_every_step(
    client: httpx.AsyncClient, staff: User
) -> None:
    mug = await create_product(client, staff, price=1000, weight=500)
    cup = await create_product(client, staff, price=250, weight=200)
    owner = await register(client)
    created = await client.post("/v1/orders", json={}, headers=owner.auth)
    assert created.status_code == 201
    assert created.headers["location"] == f"/v1/orders/{created.json()['id']}"
    order = Draft(client, owner, created.json())
    assert (order.order["status"], order.order["currency"], order.order["lines"]) == (
        "draft",
        "EUR",
        [],
    )
    assert totals(order.order) == (0, 0, 0, 0, 0)
    a, b = mug["id"], cup["id"]

    # no address yet: shipping is not known and counts as zero; tax is 19 %
    await order.change("POST", "/lines", json={"product_id": a, "quantity": 1})
    assert totals(order.order) == (1000, 0, 0, 190, 1190)
    await order.change("POST", "/lines", json={"product_id": a, "quantity": 2})
    assert order.lines() == [(a, 3, 3000)], "adding a product again raises its quantity"
    await order.change("POST", "/lines", json={"product_id": b, "quantity": 4})
    assert order.lines() == [(a, 3, 3000), (b, 4, 1000)]
    await order.change("PUT", f"/lines/{a}", json={"quantity": 1})
    assert order.lines() == [(a, 1, 1000), (b, 4, 1000)]
    assert totals(order.order) == (2000, 0, 0, 380, 2380)
    line = order.order["lines"][0]
    described = (line["sku"], line["name"], line["unit_price"]["amount"], line["weight_grams"])
    assert described == (mug["sku"], mug["name"], 1000, 500)

    # 1.3 kg within Germany: 4.90 + 2 started kg x 1.00
    await order.change("PUT", "/addresses", json={"shipping_address": ADDRESS})
    assert order.order["billing_address"] == order.order["shipping_address"]
    assert order.order["shipping_address"]["country"] == "DE"
    assert totals(order.order) == (2000, 0, 690, 511, 3201)  # 19 % of 26.90 = 5.111

    await order.change("PUT", "/discount", json={"code": " welcome10 "})
    assert (order.order["discount_code"], order.order["discount_percent"]) == ("WELCOME10", 10)
    assert totals(order.order) == (2000, 200, 690, 473, 2963)  # 19 % of 24.90 = 4.731

    # abroad: 14.90 + 2 started kg x 3.50; billing can differ from shipping
    billing = {**ADDRESS, "name": "Accounts"}
    await order.change(
        "PUT", "/addresses", json={"shipping_address": FRANCE, "billing_address": billing}
    )
    assert order.order["shipping_address"]["country"] == "FR"
    assert order.order["billing_address"]["name"] == "Accounts"
    assert totals(order.order) == (2000, 200, 2190, 758, 4748)

    await order.change("DELETE", "/discount")
    assert (order.order["discount_code"], order.order["discount_percent"]) == (None, 0)
    assert totals(order.order) == (2000, 0, 2190, 796, 4986)

    await order.change("DELETE", f"/lines/{b}")
    assert order.lines() == [(a, 1, 1000)]
    assert totals(order.order) == (1000, 0, 1840, 540, 3380)  # 19 % of 28.40 = 5.396

    read = await client.get(f"/v1/orders/{order.order['id']}", headers=owner.auth)
    assert read.json() == order.order
    assert read.headers["etag"] == f'"{order.order["version"]}"'


@pytest.mark.parametrize(("price", "tax"), [(50, 10), (150, 28), (250, 48)])
async def test_tax_is_rounded_half_to_even(
    client: httpx.AsyncClient, staff: User, price: int, tax: int
) -> None:
    product = await create_product(client, staff, price=price)
    owner = await register(client)
    order = await draft(client, owner, [(product["id"], 1)], shipping_address=None)
    assert totals(order) == (price, 0, 0, tax, price + tax)  # 9.5 -> 10, 28.5 -> 28, 47.5 -> 48


async def test_a_draft_can_be_created_complete_in_one_request(
    client: httpx.AsyncClient, staff: User
) -> None:
    product = await create_product(client, staff, price=1000, weight=1000)
    owner = await register(client)
    body = {
        "currency": "EUR",
        "lines": [{"product_id": product["id"], "quantity": 1}] * 2,
        "shipping_address": ADDRESS,
        "discount_code": "WELCOME10",
    }
    created = await client.post("/v1/orders", json=body, headers=owner.auth)
    assert created.status_code == 201, created.text
    order = created.json()
    assert (order["version"], order["discount_code"]) == (1, "WELCOME10")
    assert [(ln["product_id"], ln["quantity"]) for ln in order["lines"]] == [(product["id"], 2)]
    assert totals(order) == (2000, 200, 690, 473, 2963)
    assert created.headers["etag"] == '"1"'


@contextmanager
def counting_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record the name of every statement the database layer runs, on either database."""
    ran: list[str] = []

    def counted(cls: type, name: str) -> None:
        original: Callable[..., Any] = getattr(cls, name)

        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            ran.append(name)
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    for cls in (SqliteConnection, PgConnection):
        for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
            counted(cls, name)
    yield ran
    monkeypatch.undo()


async def test_customers_list_their_own_orders_newest_first_with_their_lines(
    client: httpx.AsyncClient, staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    products = [await create_product(client, staff) for _ in range(2)]
    lines = [(p["id"], 1) for p in products]
    owner, other = await register(client), await register(client)
    first = await draft(client, owner, lines[:1])
    with counting_statements(monkeypatch) as ran:
        one = await client.get("/v1/orders", headers=owner.auth)
    statements_for_one = len(ran)
    assert statements_for_one >= 1, ran
    assert [o["id"] for o in one.json()["items"]] == [first["id"]]

    made = [first] + [await draft(client, owner, lines) for _ in range(4)]
    await draft(client, other, lines)
    with counting_statements(monkeypatch) as ran:
        listed = await client.get("/v1/orders", params={"limit": 100}, headers=owner.auth)
    assert len(ran) == statements_for_one, "one query for the orders and all their lines"
    items = listed.json()["items"]
    assert [o["id"] for o in items] == [o["id"] for o in reversed(made)], "newest first, own only"
    assert all(o["customer_id"] == owner.id for o in items)
    assert [len(o["lines"]) for o in items] == [2, 2, 2, 2, 1]
    assert items == [
        (await client.get(f"/v1/orders/{o['id']}", headers=owner.auth)).json() for o in items
    ], "a list item is the whole order"

    pages: list[list[str]] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/orders", params=params, headers=owner.auth)).json()
        pages.append([o["id"] for o in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [[o["id"] for o in items][i : i + 2] for i in (0, 2, 4)]


async def test_staff_filter_everyones_orders_by_customer_and_status(
    client: httpx.AsyncClient, staff: User
) -> None:
    product = await create_product(client, staff, stock=5)
    customer = await register(client)
    kept = await draft(client, customer, [(product["id"], 1)])
    paid = await draft(client, customer, [(product["id"], 1)])
    dropped = await draft(client, customer, [(product["id"], 1)])
    placed = await client.post(
        f"/v1/orders/{paid['id']}/place", json={"card_number": SUCCESS_CARD}, headers=customer.auth
    )
    assert placed.status_code == 200
    cancelled = await client.post(f"/v1/orders/{dropped['id']}/cancel", headers=staff.auth)
    assert cancelled.json()["cancel_reason"] == "no reason given"

    async def ids(**params: str) -> list[str]:
        page = await client.get("/v1/orders", params={**params, "limit": "100"}, headers=staff.auth)
        assert page.status_code == 200, page.text
        return [o["id"] for o in page.json()["items"]]

    everything = await ids(customer_id=customer.id)
    assert everything == [dropped["id"], paid["id"], kept["id"]]
    assert await ids(customer_id=customer.id, status="placed") == [paid["id"]]
    assert await ids(customer_id=customer.id, status="draft") == [kept["id"]]
    assert await ids(customer_id=customer.id, status="cancelled") == [dropped["id"]]
    assert await ids(customer_id=customer.id, status="shipped") == []
    assert await ids(customer_id=UNKNOWN) == []

    anyone_placed = await client.get(
        "/v1/orders", params={"status": "placed", "limit": 5}, headers=staff.auth
    )
    assert {o["status"] for o in anyone_placed.json()["items"]} == {"placed"}

    for action in ("confirm", "ship"):
        moved = await client.post(
            f"/v1/orders/{paid['id']}/{action}",
            json={"tracking_code": " TRACK-9 "} if action == "ship" else None,
            headers=staff.auth,
        )
        assert moved.status_code == 200, moved.text
    assert moved.json()["tracking_code"] == "TRACK-9"
    assert await ids(customer_id=customer.id, status="shipped") == [paid["id"]]


async def test_request_ids_are_echoed_and_named_in_every_problem(
    client: httpx.AsyncClient,
) -> None:
    mine = {"X-Request-ID": "trace-42.a:b_c"}
    ok = await client.get("/livez", headers=mine)
    assert ok.headers["x-request-id"] == "trace-42.a:b_c"
    for response in (
        await client.get(f"/v1/orders/{UNKNOWN}", headers=mine),
        await client.get("/v1/products", params={"limit": 0}, headers=mine),
        await client.post(
            "/v1/customers", content=b"{", headers={**mine, "content-type": "application/json"}
        ),
        await client.get(f"/v1/products/{UNKNOWN}", headers=mine),
    ):
        assert response.headers["x-request-id"] == "trace-42.a:b_c"
        assert response.json()["request_id"] == "trace-42.a:b_c"

    for unsafe in ("has spaces", "x" * 129, "", "<script>"):
        response = await client.get(f"/v1/products/{UNKNOWN}", headers={"X-Request-ID": unsafe})
        made = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made), "an unsafe id is replaced, not echoed"
        assert assert_problem(response, 404)["request_id"] == made

    one = await client.get("/livez")
    two = await client.get("/livez")
    assert one.headers["x-request-id"] != two.headers["x-request-id"]


async def test_a_placement_answered_directly_answers_as_fastapis_handler_does(
    client: httpx.AsyncClient, staff: User
) -> None:
    # application/json is answered by the route's direct path; a +json type only by FastAPI's
    product = await create_product(client, staff, stock=5)
    customer = await register(client)
    answers = []
    for kind in ("application/json", "application/vnd.mercato+json"):
        order = await draft(client, customer, [(product["id"], 2)])
        placed = await client.post(
            f"/v1/orders/{order['id']}/place",
            content=b'{"card_number": "%s"}' % SUCCESS_CARD.encode(),
            headers={**customer.auth, "Content-Type": kind, "If-Match": f'"{order["version"]}"'},
        )
        assert placed.status_code == 200, placed.text
        read = await client.get(f"/v1/orders/{order['id']}", headers=customer.auth)
        assert placed.json() == read.json()
        assert placed.headers["etag"] == read.headers["etag"] == f'"{read.json()["version"]}"'
        answers.append(placed)
    direct, documented = answers
    assert direct.headers["content-type"] == documented.headers["content-type"]
    shape = lambda o: {k: v for k, v in o.items() if not k.endswith(("id", "_at"))}  # noqa: E731
    assert shape(direct.json()) == shape(documented.json())
