"""Helpers that drive the HTTP API the way a storefront would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from mercato.bootstrap import Container
from mercato.customers import Role
from tests.conftest import unique

SUCCESS_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
ERROR_CARD = "4000 0000 0000 0119"
ADDRESS = {
    "street": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


@dataclass
class User:
    id: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(client: httpx.AsyncClient, *, password: str = "correct horse battery") -> User:
    email = f"{unique('c')}@example.com"
    created = await client.post(
        "/v1/customers", json={"email": email, "password": password, "name": "Test Customer"}
    )
    assert created.status_code == 201, created.text
    return await login(client, email, password)


async def login(client: httpx.AsyncClient, email: str, password: str) -> User:
    token = await client.post("/v1/auth/token", json={"email": email, "password": password})
    assert token.status_code == 200, token.text
    body = token.json()
    return User(body["customer_id"], email, body["access_token"])


async def staff_user(client: httpx.AsyncClient, container: Container) -> User:
    email = f"{unique('s')}@example.com"
    await container.customers.register(
        email=email, password="staff password 1", name="Staff", role=Role.STAFF
    )
    return await login(client, email, "staff password 1")


async def create_product(
    client: httpx.AsyncClient,
    staff: User,
    *,
    stock: int = 10,
    price: int = 1000,
    currency: str = "EUR",
    weight: int = 500,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "sku": unique("SKU").upper(),
        "name": "Test product",
        "description": "for tests",
        "price": {"amount": price, "currency": currency},
        "weight_grams": weight,
        "initial_stock": stock,
        **extra,
    }
    created = await client.post("/v1/products", json=body, headers=staff.auth)
    assert created.status_code == 201, created.text
    return created.json()


async def draft(
    client: httpx.AsyncClient, customer: User, lines: list[tuple[str, int]], **extra: Any
) -> dict[str, Any]:
    body = {
        "lines": [{"product_id": pid, "quantity": qty} for pid, qty in lines],
        "shipping_address": ADDRESS,
        **extra,
    }
    created = await client.post("/v1/orders", json=body, headers=customer.auth)
    assert created.status_code == 201, created.text
    return created.json()


async def product_state(client: httpx.AsyncClient, staff: User, product_id: str) -> dict[str, Any]:
    got = await client.get(f"/v1/products/{product_id}", headers=staff.auth)
    assert got.status_code == 200, got.text
    return got.json()
