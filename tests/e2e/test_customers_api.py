"""Accounts over HTTP: registration, logging in, staff administration, (de)activation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import unique
from tests.e2e.helpers import (
    SUCCESS_CARD,
    User,
    assert_problem,
    create_product,
    database_unchanged,
    draft,
    login,
    register,
    running_app,
    staff_user,
)

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"


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


async def test_a_customer_registers_logs_in_and_reads_their_account(
    client: httpx.AsyncClient,
) -> None:
    local = unique("Ada.")
    body = {"email": f"  {local}@Example.COM ", "password": PASSWORD, "name": " Ada "}
    created = await client.post("/v1/customers", json=body)
    assert created.status_code == 201, created.text
    account = created.json()
    email = f"{local.lower()}@example.com"
    assert (account["email"], account["name"], account["role"]) == (email, "Ada", "customer")
    assert account["active"] is True
    assert "password" not in created.text
    assert "argon2" not in created.text

    token = await client.post("/v1/auth/token", json={"email": email.upper(), "password": PASSWORD})
    assert token.status_code == 200, token.text
    issued = token.json()
    assert (issued["token_type"], issued["role"]) == ("bearer", "customer")
    assert issued["customer_id"] == account["id"]
    assert issued["expires_in"] == 3600

    auth = {"Authorization": f"Bearer {issued['access_token']}"}
    me = await client.get("/v1/customers/me", headers=auth)
    assert me.json() == account


async def test_an_email_can_register_once_whatever_its_case(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register(client)
    for email in (user.email.upper(), f" {user.email} ", user.email.title()):
        body = {"email": email, "password": "another password", "name": "Copy"}
        async with database_unchanged(app, {user.id}):
            taken = await client.post("/v1/customers", json=body)
        assert_problem(taken, 409, "email_taken", field="email")
    assert (await login(client, user.email, PASSWORD)).id == user.id, "the first password holds"


async def test_a_wrong_password_or_unknown_email_is_401_without_saying_which(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    wrong = await client.post("/v1/auth/token", json={"email": user.email, "password": "nope"})
    unknown = await client.post(
        "/v1/auth/token", json={"email": f"{unique('nobody')}@example.com", "password": PASSWORD}
    )
    for response in (wrong, unknown):
        assert_problem(response, 401, "invalid_credentials")
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_staff_list_and_read_accounts(client: httpx.AsyncClient, staff: User) -> None:
    made = [await register(client) for _ in range(3)]

    async def pages(limit: int, count: int = 10_000) -> list[list[str]]:
        found, cursor = [], None
        while len(found) < count:
            params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            page = await client.get("/v1/customers", params=params, headers=staff.auth)
            assert page.status_code == 200, page.text
            assert len(page.json()["items"]) <= limit
            found.append([c["id"] for c in page.json()["items"]])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        return found

    seen = [customer for page in await pages(100) for customer in page]
    assert len(seen) == len(set(seen)), "no account twice"
    assert seen == sorted(seen), "oldest first"
    ours = {u.id for u in made}
    assert [u.id for u in made] == [i for i in seen if i in ours]
    assert staff.id in seen
    assert await pages(2, count=3) == [seen[0:2], seen[2:4], seen[4:6]]

    one = await client.get(f"/v1/customers/{made[0].id}", headers=staff.auth)
    assert (one.json()["id"], one.json()["email"]) == (made[0].id, made[0].email)
    missing = await client.get(
        "/v1/customers/01900000-0000-7000-8000-000000000000", headers=staff.auth
    )
    assert_problem(missing, 404, "customer_not_found")


async def test_a_deactivated_customer_can_neither_log_in_nor_order_until_reactivated(
    client: httpx.AsyncClient, app: FastAPI, staff: User
) -> None:
    customer = await register(client)  # holds a token issued while still active
    product = await create_product(client, staff, stock=3)
    order = await draft(client, customer, [(product["id"], 1)])
    watch = {customer.id, product["id"], order["id"]}

    off = await client.post(f"/v1/customers/{customer.id}/deactivate", headers=staff.auth)
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    twice = await client.post(f"/v1/customers/{customer.id}/deactivate", headers=staff.auth)
    assert twice.json()["active"] is False, "deactivating is idempotent"

    async with database_unchanged(app, watch):
        refused = await client.post(
            "/v1/auth/token", json={"email": customer.email, "password": PASSWORD}
        )
    assert_problem(refused, 403, "account_inactive")
    async with database_unchanged(app, watch):
        placing = await client.post(
            f"/v1/orders/{order['id']}/place",
            json={"card_number": SUCCESS_CARD},
            headers=customer.auth,
        )
    assert_problem(placing, 403, "account_inactive")
    stock = (await client.get(f"/v1/products/{product['id']}", headers=staff.auth)).json()
    assert (stock["available"], stock["reserved"]) == (3, 0), "nothing stays reserved"

    on = await client.post(f"/v1/customers/{customer.id}/activate", headers=staff.auth)
    assert on.json()["active"] is True
    again = await login(client, customer.email, PASSWORD)
    placed = await client.post(
        f"/v1/orders/{order['id']}/place", json={"card_number": SUCCESS_CARD}, headers=again.auth
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["status"] == "placed"


async def test_staff_accounts_log_in_with_the_staff_role(
    client: httpx.AsyncClient, staff: User
) -> None:
    me = await client.get("/v1/customers/me", headers=staff.auth)
    assert me.json()["role"] == "staff"
    token = await client.post(
        "/v1/auth/token", json={"email": staff.email, "password": "staff password 1"}
    )
    assert token.json()["role"] == "staff"


async def test_unknown_accounts_cannot_be_deactivated(
    client: httpx.AsyncClient, app: FastAPI, staff: User
) -> None:
    unknown = "01900000-0000-7000-8000-000000000000"
    for action in ("deactivate", "activate"):
        async with database_unchanged(app, {staff.id}):
            response = await client.post(f"/v1/customers/{unknown}/{action}", headers=staff.auth)
        assert_problem(response, 404, "customer_not_found")


async def test_a_deactivated_staff_account_loses_staff_powers_at_once(
    client: httpx.AsyncClient, app: FastAPI, staff: User
) -> None:
    container = app.state.container
    other = await staff_user(client, container)  # holds a token issued while still active
    assert (await client.get("/v1/customers", headers=other.auth)).status_code == 200

    off = await client.post(f"/v1/customers/{other.id}/deactivate", headers=staff.auth)
    assert off.status_code == 200, off.text

    assert_problem(await client.get("/v1/customers", headers=other.auth), 403, "account_inactive")
    product = await client.post(
        "/v1/products",
        headers=other.auth,
        json={"sku": "NOPE-1", "name": "n", "price": {"amount": 1, "currency": "EUR"}},
    )
    assert_problem(product, 403, "account_inactive")
