"""Guessing is throttled: passwords per account and per client address, discount codes per
customer and per address, counted in the database every process shares; common passwords are
refused at sign-up.

Each test speaks from client addresses of its own (the ASGI scope's client), so the counters it
fills never meet another test's, nor the suites that log in from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import unique
from tests.e2e.helpers import (
    ADDRESS,
    User,
    assert_problem,
    create_product,
    draft,
    refused,
    register,
    running_app,
    staff_user,
)

pytestmark = pytest.mark.anyio
PASSWORD = "correct horse battery"
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 12
LIMITS: dict[str, Any] = {
    "login_max_failures": ACCOUNT_LIMIT,
    "login_address_max_failures": ADDRESS_LIMIT,
    "login_window_s": 120,
    "discount_max_failures": ACCOUNT_LIMIT,
    "discount_address_max_failures": ADDRESS_LIMIT,
    "discount_window_s": 120,
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(database_url, **LIMITS) as application:
        yield application


def new_address() -> str:
    """A client address no other test uses (from the documentation range of IPv6)."""
    return f"2001:db8:{random.getrandbits(16):x}:{random.getrandbits(16):x}::1"


@asynccontextmanager
async def client_at(app: FastAPI, address: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests arrive from ``address`` (a fresh one when not given)."""
    transport = httpx.ASGITransport(app=app, client=(address or new_address(), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
        yield http


async def log_in(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/v1/auth/token", json={"email": email, "password": password})


async def new_account(app: FastAPI) -> User:
    async with client_at(app) as http:
        return await register(http, password=PASSWORD)


def assert_throttled(response: httpx.Response, *, within: float) -> int:
    """A 429 problem whose Retry-After is a whole number of seconds up to ``within``."""
    assert_problem(response, 429, "too_many_attempts")
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= within, retry_after
    return retry_after


async def test_fifty_wrong_passwords_lock_the_account_and_even_the_right_one_is_refused(
    app: FastAPI,
) -> None:
    user = await new_account(app)
    spellings = (user.email, user.email.upper(), f"  {user.email.title()} ")  # one account
    answers = []
    for attempt in range(50):
        async with client_at(app) as http:  # a new address each time: the account's own limit
            email = spellings[attempt % len(spellings)]
            answers.append(await log_in(http, email, "wrong password"))
    for response in answers[:ACCOUNT_LIMIT]:
        assert_problem(response, 401, "invalid_credentials")
    for response in answers[ACCOUNT_LIMIT:]:
        assert_throttled(response, within=120)
    async with client_at(app) as http:
        assert_throttled(await log_in(http, user.email, PASSWORD), within=120)


async def test_an_unknown_email_is_locked_out_exactly_like_an_account(app: FastAPI) -> None:
    user = await new_account(app)
    nobody = f"{unique('nobody')}@example.com"
    seen: dict[str, list[tuple[Any, ...]]] = {}
    for email in (user.email, nobody):
        async with client_at(app) as http:
            answers = [await log_in(http, email, "wrong") for _ in range(ACCOUNT_LIMIT + 2)]
        seen[email] = [(r.status_code, r.json()["code"], r.json()["detail"]) for r in answers]
        seen[email][ACCOUNT_LIMIT:] = [a[:2] for a in seen[email][ACCOUNT_LIMIT:]]  # waits vary
    assert seen[user.email] == seen[nobody]
    assert [answer[0] for answer in seen[nobody]] == [401] * ACCOUNT_LIMIT + [429, 429]


async def test_a_successful_login_clears_the_accounts_failures(app: FastAPI) -> None:
    user = await new_account(app)
    async with client_at(app) as http:
        for _ in range(ACCOUNT_LIMIT - 1):
            assert_problem(await log_in(http, user.email, "wrong"), 401, "invalid_credentials")
        assert (await log_in(http, user.email, PASSWORD)).status_code == 200
        for _ in range(ACCOUNT_LIMIT):
            assert_problem(await log_in(http, user.email, "wrong"), 401, "invalid_credentials")
        assert_throttled(await log_in(http, user.email, "wrong"), within=120)


async def test_successful_logins_from_one_address_never_count(app: FastAPI) -> None:
    user = await new_account(app)
    async with client_at(app) as http:
        for _ in range(ADDRESS_LIMIT + 3):
            assert (await log_in(http, user.email, PASSWORD)).status_code == 200


async def test_concurrent_wrong_passwords_from_many_clients_all_count(app: FastAPI) -> None:
    # On PostgreSQL the guesses are judged truly side by side (a pool of connections): a count
    # checked first and written after the verdict lets all 40 through. SQLite queues them.
    user = await new_account(app)

    async def guess() -> httpx.Response:
        async with client_at(app) as http:
            return await log_in(http, user.email, f"guess {unique()}")

    answers = await asyncio.gather(*(guess() for _ in range(40)))
    statuses = sorted(r.status_code for r in answers)
    # every guess took its place in the count before its password was checked
    assert statuses == [401] * ACCOUNT_LIMIT + [429] * (40 - ACCOUNT_LIMIT), statuses
    async with client_at(app) as http:
        assert_throttled(await log_in(http, user.email, PASSWORD), within=120)


async def test_two_applications_on_one_database_share_the_count(
    app: FastAPI, database_url: str
) -> None:
    user = await new_account(app)
    async with running_app(database_url, **LIMITS) as second:
        for attempt in range(ACCOUNT_LIMIT):
            async with client_at(app if attempt % 2 else second) as http:
                assert_problem(await log_in(http, user.email, "wrong"), 401)
        for either in (app, second):
            async with client_at(either) as http:
                assert_throttled(await log_in(http, user.email, PASSWORD), within=120)


async def test_one_address_guessing_many_accounts_is_throttled(app: FastAPI) -> None:
    address = new_address()
    victim = await new_account(app)
    async with client_at(app, address) as http:
        for _ in range(ADDRESS_LIMIT):
            email = f"{unique('spray')}@example.com"  # one guess per account: no account limit
            assert_problem(await log_in(http, email, "Summer2026!"), 401, "invalid_credentials")
        assert_throttled(await log_in(http, victim.email, PASSWORD), within=120)
    async with client_at(app) as elsewhere:
        assert (await log_in(elsewhere, victim.email, PASSWORD)).status_code == 200


async def test_a_locked_account_opens_again_when_the_window_has_passed(database_url: str) -> None:
    async with running_app(database_url, **{**LIMITS, "login_window_s": 2}) as short:
        user = await new_account(short)
        async with client_at(short) as http:
            for _ in range(ACCOUNT_LIMIT):
                assert_problem(await log_in(http, user.email, "wrong"), 401)
            assert_throttled(await log_in(http, user.email, PASSWORD), within=2)
            await asyncio.sleep(2.2)
            assert (await log_in(http, user.email, PASSWORD)).status_code == 200


async def _shop(app: FastAPI) -> tuple[User, str]:
    async with client_at(app) as http:
        staff = await staff_user(http, app.state.container)
        product = await create_product(http, staff, stock=100)
    return staff, product["id"]


async def test_guessing_discount_codes_is_throttled_per_customer(app: FastAPI) -> None:
    _, product_id = await _shop(app)
    async with client_at(app) as http:
        customer = await register(http, password=PASSWORD)
        order = await draft(http, customer, [(product_id, 1)])
    path = f"/v1/orders/{order['id']}/discount"
    for attempt in range(ACCOUNT_LIMIT):
        async with client_at(app) as http:  # new addresses: the customer's own limit
            if attempt % 2:
                guess = {"code": f"GUESS{attempt}"}
                response = await http.put(path, json=guess, headers=customer.auth)
            else:
                guess = {"discount_code": f"GUESS{attempt}"}
                response = await http.post("/v1/orders", json=guess, headers=customer.auth)
            assert_problem(response, 422, "invalid_discount_code", field="discount_code")
    async with client_at(app) as http:
        real = {"code": "WELCOME10"}
        assert_throttled(await http.put(path, json=real, headers=customer.auth), within=120)
        order_body: dict[str, Any] = {"discount_code": "WELCOME10", "shipping_address": ADDRESS}
        response = await http.post("/v1/orders", json=order_body, headers=customer.auth)
        assert_throttled(response, within=120)
        # orders without a code are not held up
        assert (await http.post("/v1/orders", json={}, headers=customer.auth)).status_code == 201


async def test_guessing_discount_codes_from_one_address_is_throttled(app: FastAPI) -> None:
    address = new_address()
    async with client_at(app, address) as http:
        for _ in range(ADDRESS_LIMIT // 2):
            customer = await register(http, password=PASSWORD)
            for guess in ("SPRING", "SUMMER"):
                body = {"discount_code": guess}
                response = await http.post("/v1/orders", json=body, headers=customer.auth)
                assert_problem(response, 422, "invalid_discount_code")
        body = {"discount_code": "WELCOME10"}
        response = await http.post("/v1/orders", json=body, headers=customer.auth)
        assert_throttled(response, within=120)
    async with client_at(app) as elsewhere:
        created = await elsewhere.post("/v1/orders", json=body, headers=customer.auth)
        assert created.status_code == 201, created.text
        assert created.json()["discount_percent"] == 10


async def test_a_valid_code_applied_again_and_again_is_never_throttled(app: FastAPI) -> None:
    _, product_id = await _shop(app)
    async with client_at(app) as http:
        customer = await register(http, password=PASSWORD)
        order = await draft(http, customer, [(product_id, 1)])
        path = f"/v1/orders/{order['id']}/discount"
        for _ in range(ACCOUNT_LIMIT + 2):
            applied = await http.put(path, json={"code": "WELCOME10"}, headers=customer.auth)
            assert applied.status_code == 200, applied.text


@pytest.mark.parametrize(
    "password", ["password", "PASSWORD1", "iloveyou", "Qwertyuiop", "12345678", "letmein1"]
)
async def test_common_passwords_are_refused_at_sign_up(app: FastAPI, password: str) -> None:
    email = f"{unique('common')}@example.com"
    async with client_at(app) as http:
        body = {"email": email, "password": password, "name": "Common"}
        problem = await refused(
            app, http.post("/v1/customers", json=body), 422, "common_password", field="password"
        )
        assert "common" in problem["detail"]
        assert (await log_in(http, email, password)).status_code == 401


async def test_a_throttled_answer_is_not_kept_for_its_idempotency_key(database_url: str) -> None:
    limits = {**LIMITS, "discount_window_s": 2}
    async with running_app(database_url, **limits) as short, client_at(short) as http:
        customer = await register(http, password=PASSWORD)
        for attempt in range(ACCOUNT_LIMIT):
            body = {"discount_code": f"GUESS{attempt}"}
            response = await http.post("/v1/orders", json=body, headers=customer.auth)
            assert_problem(response, 422, "invalid_discount_code")
        headers = {**customer.auth, "Idempotency-Key": unique("key")}
        body = {"discount_code": "WELCOME10"}
        assert_throttled(await http.post("/v1/orders", json=body, headers=headers), within=2)
        await asyncio.sleep(2.2)
        # "not now" is no final answer: the same request with the same key runs once allowed
        created = await http.post("/v1/orders", json=body, headers=headers)
        assert created.status_code == 201, created.text
        assert "idempotent-replayed" not in created.headers
