"""The catalog over HTTP: products, browsing and paging, optimistic updates, stock and its trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from mercato.catalog.store import ProductRepository, products
from mercato.platform.db import sql
from tests.conftest import unique
from tests.e2e.helpers import (
    User,
    assert_problem,
    create_product,
    database_unchanged,
    register,
    running_app,
    staff_user,
)

pytestmark = pytest.mark.anyio


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


async def browse(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Every product a query finds, following next_cursor to the last page."""
    found: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/v1/products", params=query, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= params.get("limit", 20)
        found += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("paging never ended")


async def test_staff_create_a_product_with_its_opening_stock(
    client: httpx.AsyncClient, staff: User
) -> None:
    sku = unique("mug-").lower()
    body = {
        "sku": f"  {sku} ",
        "name": "  Blue mug ",
        "description": "Holds coffee",
        "price": {"amount": 1250, "currency": "EUR"},
        "weight_grams": 350,
        "initial_stock": 7,
    }
    created = await client.post("/v1/products", json=body, headers=staff.auth)
    assert created.status_code == 201, created.text
    product = created.json()
    assert created.headers["location"] == f"/v1/products/{product['id']}"
    assert created.headers["etag"] == '"1"'
    assert product["sku"] == sku.upper()
    assert product["name"] == "Blue mug"
    assert product["price"] == {"amount": 1250, "currency": "EUR"}
    assert (product["available"], product["reserved"], product["sold"]) == (7, 0, 0)
    assert (product["on_hand"], product["active"], product["version"]) == (7, True, 1)

    public = await client.get(created.headers["location"])
    assert public.status_code == 200
    assert public.headers["etag"] == '"1"'
    assert "reserved" not in public.json()
    assert "on_hand" not in public.json()


async def test_a_sku_can_be_used_once_whatever_its_case(
    client: httpx.AsyncClient, app: FastAPI, staff: User
) -> None:
    product = await create_product(client, staff)
    again = {"sku": product["sku"].lower(), "name": "Copy", "price": product["price"]}
    async with database_unchanged(app, {product["id"]}):
        taken = await client.post("/v1/products", json=again, headers=staff.auth)
    assert_problem(taken, 409, "sku_taken", field="sku")


async def test_text_search_matches_name_or_sku_and_treats_wildcards_literally(
    client: httpx.AsyncClient, staff: User
) -> None:
    ref = unique("find")
    names = {
        "percent": f"{ref} 100% cotton",
        "no_percent": f"{ref} 100 cotton",
        "underscore": f"{ref} snake_case",
        "no_underscore": f"{ref} snakeXcase",
        "backslash": f"{ref} back\\slash",
    }
    made = {
        key: (await create_product(client, staff, name=name))["id"] for key, name in names.items()
    }

    async def hits(text: str) -> set[str]:
        return {p["id"] for p in await browse(client, q=text, limit=100)}

    everything = set(made.values())
    assert await hits(ref) == everything
    assert await hits(ref.upper()) == everything, "search ignores case"
    assert await hits(f"{ref} 100%") == {made["percent"]}
    assert await hits(f"{ref} snake_") == {made["underscore"]}
    assert await hits(f"{ref} back\\") == {made["backslash"]}
    assert await hits("0% c") >= {made["percent"]}
    assert not await hits("0% c") & everything - {made["percent"]}
    assert await hits("e_c") & everything == {made["underscore"]}
    assert await hits(f"{ref}%cotton") == set()

    sku = (await client.get(f"/v1/products/{made['percent']}")).json()["sku"]
    assert await hits(sku.lower()) == {made["percent"]}


async def test_paging_through_many_products_has_no_gaps_and_no_duplicates(
    client: httpx.AsyncClient, staff: User
) -> None:
    ref = unique("page")
    made = [(await create_product(client, staff, name=f"{ref} {i}"))["id"] for i in range(23)]
    for limit in (1, 5, 7, 23, 100):
        found = [p["id"] for p in await browse(client, q=ref, limit=limit)]
        assert found == made, f"limit {limit}: the pages together are every product, in order"

    first = (await client.get("/v1/products", params={"q": ref, "limit": 23})).json()
    assert first["next_cursor"] is None, "an exactly full last page says there is no next one"
    default = (await client.get("/v1/products", params={"q": ref})).json()
    assert len(default["items"]) == 20

    # a product created while a client pages through appears on a later page, not twice
    page = (await client.get("/v1/products", params={"q": ref, "limit": 10})).json()
    late = await create_product(client, staff, name=f"{ref} late")
    rest = await browse(client, q=ref, limit=10, cursor=page["next_cursor"])
    ids = [p["id"] for p in page["items"]] + [p["id"] for p in rest]
    assert ids == [*made, late["id"]]


async def test_inactive_products_are_hidden_from_customers_but_not_from_staff(
    client: httpx.AsyncClient, staff: User
) -> None:
    ref = unique("hide")
    shown = await create_product(client, staff, name=f"{ref} shown")
    hidden = await create_product(client, staff, name=f"{ref} hidden")
    off = await client.patch(
        f"/v1/products/{hidden['id']}", json={"active": False}, headers=staff.auth
    )
    assert off.status_code == 200
    assert off.json()["active"] is False
    customer = await register(client)

    def ids(items: list[dict[str, Any]]) -> list[str]:
        return [p["id"] for p in items]

    assert ids(await browse(client, q=ref)) == [shown["id"]]
    for headers in ({}, customer.auth):
        asked = await browse(client, headers, q=ref, include_inactive="true")
        assert ids(asked) == [shown["id"]], "customers cannot ask for inactive products"
        gone = await client.get(f"/v1/products/{hidden['id']}", headers=headers)
        assert_problem(gone, 404, "product_not_found")
    assert ids(await browse(client, staff.auth, q=ref)) == [shown["id"]]
    everything = await browse(client, staff.auth, q=ref, include_inactive="true")
    assert ids(everything) == [shown["id"], hidden["id"]]
    seen = await client.get(f"/v1/products/{hidden['id']}", headers=staff.auth)
    assert seen.json()["active"] is False

    on = await client.patch(
        f"/v1/products/{hidden['id']}", json={"active": True}, headers=staff.auth
    )
    assert on.json()["active"] is True
    assert ids(await browse(client, q=ref)) == [shown["id"], hidden["id"]]


async def test_patch_with_if_match_refuses_a_lost_update(
    client: httpx.AsyncClient, app: FastAPI, staff: User
) -> None:
    product = await create_product(client, staff)
    path = f"/v1/products/{product['id']}"
    read = await client.get(path, headers=staff.auth)
    etag = read.headers["etag"]
    assert etag == '"1"'

    change = {"name": "Renamed", "price": {"amount": 999, "currency": "EUR"}}
    renamed = await client.patch(path, json=change, headers={**staff.auth, "If-Match": etag})
    assert renamed.status_code == 200, renamed.text
    assert renamed.headers["etag"] == '"2"'
    assert (renamed.json()["name"], renamed.json()["price"]["amount"]) == ("Renamed", 999)

    async with database_unchanged(app, {product["id"]}):
        late = await client.patch(
            path, json={"name": "Mine"}, headers={**staff.auth, "If-Match": etag}
        )
    assert assert_problem(late, 409, "product_conflict")["current_version"] == 2

    weak = await client.patch(
        path, json={"description": "new"}, headers={**staff.auth, "If-Match": 'W/"2"'}
    )
    assert weak.status_code == 200
    assert weak.json()["version"] == 3

    same = await client.patch(path, json={"name": "Renamed"}, headers=staff.auth)
    assert same.json()["version"] == 3, "a change to the same value is no change"
    unconditional = await client.patch(path, json={"weight_grams": 1}, headers=staff.auth)
    assert unconditional.json()["version"] == 4


async def test_stock_adjustments_change_availability_and_leave_an_audit_trail(
    client: httpx.AsyncClient, app: FastAPI, staff: User
) -> None:
    product = await create_product(client, staff, stock=5)
    path = f"/v1/products/{product['id']}/stock-adjustments"
    for delta, reason, available in ((10, "delivery", 15), (-3, "  broken  ", 12)):
        adjusted = await client.post(
            path, json={"delta": delta, "reason": reason}, headers=staff.auth
        )
        assert adjusted.status_code == 201, adjusted.text
        assert adjusted.json()["available"] == available
    assert adjusted.json()["version"] == 1, "stock is not an attribute edit"

    async with database_unchanged(app, {product["id"]}):
        too_many = await client.post(
            path, json={"delta": -13, "reason": "theft"}, headers=staff.auth
        )
    problem = assert_problem(too_many, 409, "out_of_stock")
    assert (problem["available"], problem["requested"]) == (12, 13)
    for body, field in (
        ({"delta": 0, "reason": "nothing"}, "delta"),
        ({"delta": 1, "reason": " "}, "reason"),
    ):
        async with database_unchanged(app, {product["id"]}):
            refused = await client.post(path, json=body, headers=staff.auth)
        assert_problem(refused, 422, "invalid_stock_adjustment", field=field)

    emptied = await client.post(path, json={"delta": -12, "reason": "recall"}, headers=staff.auth)
    assert emptied.json()["available"] == 0

    trail = (await client.get(path, headers=staff.auth)).json()
    assert trail["next_cursor"] is None
    assert [(a["delta"], a["reason"], a["available_after"]) for a in trail["items"]] == [
        (5, "initial stock", 5),
        (10, "delivery", 15),
        (-3, "broken", 12),
        (-12, "recall", 0),
    ]
    assert {a["actor_id"] for a in trail["items"]} == {staff.id}
    assert {a["product_id"] for a in trail["items"]} == {product["id"]}

    pages, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(path, params=params, headers=staff.auth)).json()
        pages.append([a["id"] for a in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [[a["id"] for a in trail["items"][:3]], [trail["items"][3]["id"]]]


async def test_a_product_without_opening_stock_has_an_empty_trail(
    client: httpx.AsyncClient, staff: User
) -> None:
    product = await create_product(client, staff, stock=0)
    trail = await client.get(f"/v1/products/{product['id']}/stock-adjustments", headers=staff.auth)
    assert trail.json() == {"items": [], "next_cursor": None}
    assert product["available"] == 0


_SET_AVAILABLE = sql(
    sa.update(products)
    .where(products.c.id == sa.bindparam("id"))
    .values(available=sa.bindparam("available"))
)


async def test_stock_beyond_what_the_database_can_count_is_refused_not_a_500(
    client: httpx.AsyncClient, app: FastAPI, staff: User, backend: str
) -> None:
    product = await create_product(client, staff, stock=1)
    near_the_top = 2**31 - 1_000_000  # PostgreSQL counts stock in 32 bits
    async with app.state.container.db.transaction() as conn:
        await conn.execute(_SET_AVAILABLE, id=product["id"], available=near_the_top)
    path = f"/v1/products/{product['id']}/stock-adjustments"
    body = {"delta": 1_000_000, "reason": "a very large delivery"}
    if backend == "postgres":
        async with database_unchanged(app, {product["id"]}):
            refused = await client.post(path, json=body, headers=staff.auth)
        assert_problem(refused, 422, "value_out_of_range")
    else:
        added = await client.post(path, json=body, headers=staff.auth)
        assert added.json()["available"] == near_the_top + 1_000_000


async def test_the_fast_product_read_has_exactly_the_documented_shape(
    client: httpx.AsyncClient, app: FastAPI, staff: User
) -> None:
    from mercato.catalog.routes import ProductRead, ProductStaffRead

    made = await create_product(client, staff, stock=7)
    product = await app.state.container.transact.read(
        lambda uow: uow.repository(ProductRepository).get(made["id"])
    )
    public = await client.get(f"/v1/products/{made['id']}")
    assert public.json() == ProductRead.of(product).model_dump(mode="json")
    assert public.headers["etag"] == f'"{product.version}"'
    as_staff = await client.get(f"/v1/products/{made['id']}", headers=staff.auth)
    assert as_staff.json() == ProductStaffRead.of(product).model_dump(mode="json")
    customer = await register(client)
    as_customer = await client.get(f"/v1/products/{made['id']}", headers=customer.auth)
    assert as_customer.json() == public.json()
    forged = await client.get(
        f"/v1/products/{made['id']}", headers={"Authorization": "Bearer not-a-token"}
    )
    assert_problem(forged, 401, "invalid_token")


async def test_an_anonymous_product_read_answers_as_the_routes_handler_does(
    client: httpx.AsyncClient, app: FastAPI, staff: User
) -> None:
    # without a token the read is answered in front of FastAPI's routing; with a
    # customer's token by the route's handler, which shows a customer what it shows anyone
    made = await create_product(client, staff, stock=3)
    customer = await register(client)
    path = f"/v1/products/{made['id']}"
    direct = await client.get(path)
    routed = await client.get(path, headers=customer.auth)

    assert direct.status_code == routed.status_code == 200
    assert direct.content == routed.content
    headers = lambda r: [(k, v) for k, v in r.headers.multi_items() if k != "x-request-id"]  # noqa: E731
    assert headers(direct) == headers(routed)
    assert direct.headers["x-content-type-options"] == "nosniff"
    assert direct.headers["x-request-id"]


async def test_a_product_read_refuses_bad_ids_and_unknown_products_as_before(
    client: httpx.AsyncClient,
) -> None:
    too_long = await client.get(f"/v1/products/{'a' * 37}")
    assert_problem(too_long, 422, "validation_failed", field="product_id")
    missing = await client.get(f"/v1/products/{unique('p')}")
    assert_problem(missing, 404, "product_not_found")


async def test_the_busiest_requests_are_answered_in_front_of_the_routes(app: FastAPI) -> None:
    from mercato.catalog.routes import read_product
    from mercato.orders.routes import place_order
    from mercato.platform.routing import InFrontOfRoutes

    innermost = app.user_middleware[-1]  # after every layer of mercato's own
    assert innermost.cls is InFrontOfRoutes
    assert set(innermost.kwargs["answers"]) == {read_product, place_order}
