"""Checkout over HTTP with the Stripe provider (pointed at a local stand-in), and the
production profile's refusal of test payments as a real server process sees it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import make_settings, running, unique
from tests.e2e.helpers import User, assert_problem, create_product, draft, register, running_app
from tests.e2e.helpers import staff_user as make_staff
from tests.e2e.scrape import parse, value
from tests.e2e.server import free_port, running_server, server_env
from tests.integration.helpers import product
from tests.stripe_standin import LIVE_KEY, SECRET_KEY, RunningStandIn, StripeStandIn

VISA = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[StripeStandIn]:
    with RunningStandIn() as standin:
        yield standin


@pytest.fixture
async def app(database_url: str, stripe_api: StripeStandIn) -> AsyncIterator[FastAPI]:
    async with running_app(
        database_url,
        payment_provider="stripe",
        stripe_secret_key=SECRET_KEY,
        stripe_api_base=stripe_api.url,
        stripe_timeout_s=1.0,
        stripe_max_network_retries=0,
    ) as application:
        yield application


async def _draft(client: httpx.AsyncClient, app: FastAPI) -> tuple[User, dict[str, Any]]:
    """A customer and their draft of one product (EUR 25.00, three in stock)."""
    staff = await make_staff(client, app.state.container)
    product = await create_product(client, staff, stock=3, price=2500)
    customer = await register(client)
    return customer, await draft(client, customer, [(product["id"], 1)])


@pytest.mark.anyio
async def test_a_customer_pays_through_stripe_and_is_charged_once(
    client: httpx.AsyncClient, app: FastAPI, stripe_api: StripeStandIn
) -> None:
    customer, order = await _draft(client, app)
    place = f"/v1/orders/{order['id']}/place"

    declined = await client.post(place, json={"card_number": DECLINED}, headers=customer.auth)
    body = assert_problem(declined, 402, "payment_declined")
    assert body["reason"] == "generic_decline"

    stripe_api.next_charge("rate_limit")
    limited = await client.post(place, json={"card_number": VISA}, headers=customer.auth)
    assert_problem(limited, 503, "payment_provider_error")
    assert limited.headers["retry-after"] == "5"

    placed = await client.post(place, json={"card_number": VISA}, headers=customer.auth)
    assert placed.status_code == 200, placed.text
    assert placed.json()["status"] == "placed"
    payments = await client.get(f"/v1/orders/{order['id']}/payments", headers=customer.auth)
    rows = [(p["status"], p["provider"]) for p in payments.json()]
    assert rows == [("failed", "stripe"), ("failed", "stripe"), ("captured", "stripe")]
    total = placed.json()["totals"]["total"]["amount"]
    keys = {f"mercato-charge-{p['id']}" for p in payments.json()}
    charged = [i for i in stripe_api.captured if i["metadata"]["mercato_idempotency_key"] in keys]
    assert [i["amount"] for i in charged] == [total]


@pytest.mark.anyio
async def test_a_customer_pays_through_stripe_with_a_payment_method_from_the_browser(
    client: httpx.AsyncClient, app: FastAPI, stripe_api: StripeStandIn
) -> None:
    customer, order = await _draft(client, app)
    place = f"/v1/orders/{order['id']}/place"
    keyed = {**customer.auth, "Idempotency-Key": unique("k")}

    declined = await client.post(
        place, json={"payment_method": "pm_card_visa_chargeDeclined"}, headers=customer.auth
    )
    assert assert_problem(declined, 402, "payment_declined")["reason"] == "generic_decline"

    method = stripe_api.tokenise("1881")  # what Stripe.js hands the shop's page
    placed = await client.post(place, json={"payment_method": method}, headers=keyed)
    again = await client.post(place, json={"payment_method": method}, headers=keyed)

    assert placed.status_code == 200, placed.text
    assert placed.json()["status"] == "placed"
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == placed.content
    payments = await client.get(f"/v1/orders/{order['id']}/payments", headers=customer.auth)
    rows = [(p["status"], p["provider"], p["card_last4"]) for p in payments.json()]
    assert rows == [("failed", "stripe", ""), ("captured", "stripe", "1881")]
    keys = {f"mercato-charge-{p['id']}" for p in payments.json()}
    charged = [i for i in stripe_api.captured if i["metadata"]["mercato_idempotency_key"] in keys]
    assert [i["amount"] for i in charged] == [placed.json()["totals"]["total"]["amount"]]
    sent = [p for m, path, p in stripe_api.requests if path == "/v1/payment_intents"]
    assert not any("payment_method_data" in p for p in sent if p.get("payment_method") == method)


def test_production_starts_on_stripe_and_reports_no_override(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the production profile runs on PostgreSQL only")
    metrics_port = free_port()
    with (
        RunningStandIn(secret_key=LIVE_KEY) as stripe_api,
        running_server(
            database_url,
            tmp_path,
            MERCATO_ENV="production",
            MERCATO_METRICS_PORT=str(metrics_port),
            MERCATO_PAYMENT_PROVIDER="stripe",
            MERCATO_STRIPE_SECRET_KEY=LIVE_KEY,
            MERCATO_STRIPE_API_BASE=stripe_api.url,
        ) as server,
    ):
        metrics = parse(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text)
    assert value(metrics, "mercato_sandbox_payments_override") == 0
    assert "TEST PAYMENTS" not in server.log.read_text()


@pytest.mark.anyio
async def test_production_on_stripe_charges_a_payment_method_made_in_the_browser(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the production profile runs on PostgreSQL only")
    async with running(make_settings(database_url)) as container:
        widget = await product(container, stock=2, price=2500)
    with (
        RunningStandIn(secret_key=LIVE_KEY) as stripe_api,
        running_server(
            database_url,
            tmp_path,
            MERCATO_ENV="production",
            MERCATO_METRICS_PORT=str(free_port()),
            MERCATO_PAYMENT_PROVIDER="stripe",
            MERCATO_STRIPE_SECRET_KEY=LIVE_KEY,
            MERCATO_STRIPE_API_BASE=stripe_api.url,
        ) as server,
    ):
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            customer = await register(http)
            order = await draft(http, customer, [(widget.id, 1)])
            method = stripe_api.tokenise("4242")  # what Stripe.js hands the shop's page
            placed = await http.post(
                f"/v1/orders/{order['id']}/place",
                json={"payment_method": method},
                headers=customer.auth,
            )
            listed = await http.get(f"/v1/orders/{order['id']}/payments", headers=customer.auth)

    assert placed.status_code == 200, placed.text
    assert placed.json()["status"] == "placed"
    assert [(p["status"], p["card_last4"]) for p in listed.json()] == [("captured", "4242")]
    (sent,) = [p for _, path, p in stripe_api.requests if path == "/v1/payment_intents"]
    assert (sent["payment_method"], sent["confirm"]) == (method, "true")
    assert "payment_method_data" not in sent
    (intent,) = stripe_api.captured
    assert intent["amount"] == placed.json()["totals"]["total"]["amount"]


def test_production_refuses_the_sandbox_unless_a_drill_says_so_loudly(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the production profile runs on PostgreSQL only")
    metrics_port = free_port()
    env = server_env(database_url, MERCATO_ENV="production", MERCATO_METRICS_PORT=str(metrics_port))
    refused = subprocess.run(
        [sys.executable, "-m", "mercato", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "MERCATO_PAYMENT_PROVIDER must be stripe with a live key" in refused.stderr

    with running_server(
        database_url,
        tmp_path,
        MERCATO_ENV="production",
        MERCATO_METRICS_PORT=str(metrics_port),
        MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION="true",
    ) as server:
        metrics = parse(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text)
    assert value(metrics, "mercato_sandbox_payments_override") == 1
    assert "PRODUCTION IS TAKING TEST PAYMENTS (sandbox provider)" in server.log.read_text()
