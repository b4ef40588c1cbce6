"""Checkout with a payment method id over HTTP, on the sandbox provider.

A browser tokenises the card with the provider's client library and mercato receives only the
payment method id. The place request takes exactly one of ``payment_method`` and
``card_number``; anything else is refused by name and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import unique
from tests.e2e.helpers import SUCCESS_CARD, World, build_world, product_state, running_app

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(database_url) as application:
        yield application


@pytest.fixture
async def world(client: httpx.AsyncClient, app: FastAPI) -> World:
    return await build_world(client, app)


def place(client: httpx.AsyncClient, world: World, body: Any, **headers: str) -> Any:
    return client.post(
        f"/v1/orders/{world.order['id']}/place",
        json=body,
        headers={**world.owner.auth, **headers},
    )


async def payments(client: httpx.AsyncClient, world: World) -> list[tuple[str, str]]:
    listed = await client.get(f"/v1/orders/{world.order['id']}/payments", headers=world.owner.auth)
    assert listed.status_code == 200, listed.text
    return [(p["status"], p["card_last4"]) for p in listed.json()]


async def stock(client: httpx.AsyncClient, world: World) -> tuple[int, int, int]:
    """(available, reserved, sold) of the ordered product."""
    state = await product_state(client, world.staff, world.product["id"])
    return state["available"], state["reserved"], state["sold"]


@pytest.mark.parametrize(
    ("body", "field", "codes"),
    [
        ({}, "payment_method", {"payment_method_required"}),
        (
            {"card_number": None, "payment_method": None},
            "payment_method",
            {"payment_method_required"},
        ),
        (
            {"card_number": SUCCESS_CARD, "payment_method": "pm_card_visa"},
            "card_number",
            {"payment_method_ambiguous"},
        ),
        (
            {"card_number": "4242 4242 4242 4241", "payment_method": "pm_card_visa"},
            "card_number",
            {"payment_method_ambiguous"},
        ),
        ({"payment_method": "pm"}, "payment_method", {"validation_failed"}),
        ({"payment_method": "p" * 256}, "payment_method", {"validation_failed"}),
        ({"payment_method": 42}, "payment_method", {"validation_failed"}),
        ({"payment_method": ["pm_card_visa"]}, "payment_method", {"validation_failed"}),
        ({"payment_method": {"id": "pm_card_visa"}}, "payment_method", {"validation_failed"}),
        ({"payment_method": "pm_card visa"}, "payment_method", {"invalid_payment_method"}),
        ({"payment_method": "pm_card_visa\n"}, "payment_method", {"validation_failed"}),
        ({"payment_method": "pm-card-visa"}, "payment_method", {"invalid_payment_method"}),
        ({"payment_method": "pm_card_vis\u00e4"}, "payment_method", {"invalid_payment_method"}),
        ({"payment_method": "pm_card_visa&x=1"}, "payment_method", {"invalid_payment_method"}),
        ({"payment_method": "pm_\u0000visa"}, "payment_method", {"validation_failed"}),
    ],
)
async def test_a_place_request_without_exactly_one_valid_way_to_pay_is_refused_by_name(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], field: str, codes: set[str]
) -> None:
    problem = await world.refused(place(client, world, body), 422, codes, field=field)

    assert field in problem["detail"]
    assert (await client.get(f"/v1/orders/{world.order['id']}", headers=world.owner.auth)).json()[
        "status"
    ] == "draft"


async def test_a_customer_pays_with_a_payment_method_and_the_last_four_digits_are_kept(
    client: httpx.AsyncClient, world: World
) -> None:
    placed = await place(client, world, {"payment_method": "pm_card_visa"})

    assert placed.status_code == 200, placed.text
    assert placed.json()["status"] == "placed"
    assert await payments(client, world) == [("captured", "4242")]
    assert await stock(client, world) == (9, 0, 1)


async def test_a_declined_payment_method_is_402_and_an_erring_one_503_and_both_release_stock(
    client: httpx.AsyncClient, world: World
) -> None:
    declined = await place(client, world, {"payment_method": "pm_card_visa_chargeDeclined"})
    assert declined.status_code == 402, declined.text
    assert declined.json()["code"] == "payment_declined"
    assert await stock(client, world) == (10, 0, 0)

    failed = await place(client, world, {"payment_method": "pm_card_chargeDeclinedProcessingError"})
    assert failed.status_code == 503, failed.text
    assert failed.json()["code"] == "payment_provider_error"
    assert failed.headers["retry-after"] == "5"
    assert await stock(client, world) == (10, 0, 0)

    placed = await place(client, world, {"payment_method": "pm_1PqRsT2eZvKYlo2CNotATestOne"})
    assert placed.status_code == 200, placed.text
    assert await payments(client, world) == [("failed", ""), ("failed", ""), ("captured", "")]
    assert await stock(client, world) == (9, 0, 1)


async def test_a_retried_place_with_a_payment_method_and_the_same_key_charges_once(
    client: httpx.AsyncClient, world: World
) -> None:
    key = unique("k")
    body = {"payment_method": "pm_card_mastercard"}

    first = await place(client, world, body, **{"Idempotency-Key": key})
    again = await place(client, world, body, **{"Idempotency-Key": key})
    other = await place(
        client, world, {"payment_method": "pm_card_visa"}, **{"Idempotency-Key": key}
    )

    assert first.status_code == 200, first.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert other.status_code == 422, other.text  # same key, another payment method
    assert await payments(client, world) == [("captured", "4444")]
    assert await stock(client, world) == (9, 0, 1)
