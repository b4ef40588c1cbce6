"""The whole order journey over HTTP, and its unhappy paths."""

from __future__ import annotations

import httpx
import pytest

from mercato.bootstrap import Container
from tests.e2e.helpers import (
    DECLINED_CARD,
    ERROR_CARD,
    SUCCESS_CARD,
    create_product,
    draft,
    product_state,
    register,
    staff_user,
)

pytestmark = pytest.mark.anyio


async def test_a_customer_buys_and_staff_fulfil_the_order(
    client: httpx.AsyncClient, app: object
) -> None:
    container: Container = app.state.container  # type: ignore[attr-defined]
    staff = await staff_user(client, container)
    product = await create_product(client, staff, stock=5, price=1250, weight=1200)
    customer = await register(client)

    browse = await client.get("/v1/products", params={"q": product["sku"].lower()})
    assert [p["id"] for p in browse.json()["items"]] == [product["id"]]

    order = await draft(client, customer, [(product["id"], 2)])
    assert order["status"] == "draft"
    # 2 x 12.50 = 25.00; 2.4 kg ships domestic at 4.90 + 3 started kg x 1.00 = 7.90;
    # tax 19 % of 32.90 = 6.251 -> 6.25
    assert order["totals"]["subtotal"]["amount"] == 2500
    assert order["totals"]["shipping"]["amount"] == 790
    assert order["totals"]["tax"]["amount"] == 625
    assert order["totals"]["total"]["amount"] == 3915

    placed = await client.post(
        f"/v1/orders/{order['id']}/place", json={"card_number": SUCCESS_CARD}, headers=customer.auth
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["status"] == "placed"
    stock = await product_state(client, staff, product["id"])
    assert (stock["available"], stock["reserved"], stock["sold"]) == (3, 0, 2)

    for action, status in (("confirm", "confirmed"), ("ship", "shipped"), ("deliver", "delivered")):
        moved = await client.post(f"/v1/orders/{order['id']}/{action}", headers=staff.auth)
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == status

    payments = await client.get(f"/v1/orders/{order['id']}/payments", headers=customer.auth)
    assert [(p["status"], p["amount"]["amount"]) for p in payments.json()] == [("captured", 3915)]


async def test_cancelling_a_paid_order_returns_stock_and_refunds(
    client: httpx.AsyncClient, app: object
) -> None:
    container: Container = app.state.container  # type: ignore[attr-defined]
    staff = await staff_user(client, container)
    product = await create_product(client, staff, stock=4)
    customer = await register(client)
    order = await draft(client, customer, [(product["id"], 3)])
    placed = await client.post(
        f"/v1/orders/{order['id']}/place", json={"card_number": SUCCESS_CARD}, headers=customer.auth
    )
    assert placed.status_code == 200

    cancelled = await client.post(
        f"/v1/orders/{order['id']}/cancel",
        json={"reason": "changed my mind"},
        headers=customer.auth,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    stock = await product_state(client, staff, product["id"])
    assert (stock["available"], stock["reserved"], stock["sold"]) == (4, 0, 0)

    while await container.relay.run_once():
        pass
    payments = await client.get(f"/v1/orders/{order['id']}/payments", headers=customer.auth)
    assert [p["status"] for p in payments.json()] == ["refunded"]


@pytest.mark.parametrize(
    ("card", "status", "code"),
    [
        (DECLINED_CARD, 402, "payment_declined"),
        (ERROR_CARD, 503, "payment_provider_error"),
    ],
)
async def test_a_failed_payment_reserves_nothing_and_the_order_can_be_retried(
    client: httpx.AsyncClient, app: object, card: str, status: int, code: str
) -> None:
    container: Container = app.state.container  # type: ignore[attr-defined]
    staff = await staff_user(client, container)
    product = await create_product(client, staff, stock=2)
    customer = await register(client)
    order = await draft(client, customer, [(product["id"], 2)])

    refused = await client.post(
        f"/v1/orders/{order['id']}/place", json={"card_number": card}, headers=customer.auth
    )
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == code
    stock = await product_state(client, staff, product["id"])
    assert (stock["available"], stock["reserved"], stock["sold"]) == (2, 0, 0)
    again = await client.get(f"/v1/orders/{order['id']}", headers=customer.auth)
    assert again.json()["status"] == "draft"
    assert again.json()["payment_in_progress"] is False

    retried = await client.post(
        f"/v1/orders/{order['id']}/place", json={"card_number": SUCCESS_CARD}, headers=customer.auth
    )
    assert retried.status_code == 200, retried.text
    payments = await client.get(f"/v1/orders/{order['id']}/payments", headers=customer.auth)
    assert [p["status"] for p in payments.json()] == ["failed", "captured"]
