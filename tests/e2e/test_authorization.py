"""Who may call what, on every route the application serves.

The route table lives in ``helpers.ROUTES``; the first test fails when the application gains a
route that the table does not describe, so no route can ship without these checks. Every
protected route is also tried with tokens that are validly signed but whose account is unknown,
deactivated or no longer has the token's role: authority comes from the account, not the token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from mercato.bootstrap import Container
from mercato.migrations.schema import metadata
from mercato.platform.db import sql
from mercato.platform.security import ACCOUNT_CACHE_S
from tests.conftest import TEST_SECRET
from tests.e2e.helpers import (
    PROBLEM_JSON,
    ROUTES,
    Access,
    RouteCase,
    World,
    app_routes,
    assert_problem,
    build_world,
    routes,
    running_app,
    shared_world,
    staff_user,
)
from tests.e2e.server import running_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(database_url) as application:
        yield application


@pytest.fixture(scope="module")
async def world(app: FastAPI) -> World:
    """Shared by the tests here that change nothing (each refusal proves it)."""
    return await shared_world(app)


PROTECTED = [a for a in Access if a is not Access.PUBLIC]
ORDER_ROUTES = (
    Access.ORDER_READ,
    Access.ORDER_OWNER,
    Access.ORDER_STAFF,
    Access.ORDER_CANCEL,
    Access.ORDER_FOLLOW,
)


def _token(secret: str, *, algorithm: str = "HS256", **claims: object) -> str:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "sub": "01900000-0000-7000-8000-000000000000",
        "role": "staff",
        "iss": "mercato",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    values.update(claims)
    return jwt.encode(
        {k: v for k, v in values.items() if v is not None}, secret, algorithm=algorithm
    )


def _bad_credentials(staff_id: str) -> list[tuple[str, str, str]]:
    """(name, Authorization header, expected code) for tokens that must not be accepted."""
    an_hour_ago = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    bearer = "Bearer {}".format
    return [
        ("no scheme", "", "unauthenticated"),
        ("empty bearer", "Bearer ", "unauthenticated"),
        ("basic auth", "Basic c3RhZmY6cGFzc3dvcmQ=", "unauthenticated"),
        ("garbage", bearer("not-a-token"), "invalid_token"),
        (
            "wrong key",
            bearer(_token("another-secret-that-is-long-enough", sub=staff_id)),
            "invalid_token",
        ),
        ("alg none", bearer(_token("", algorithm="none", sub=staff_id)), "invalid_token"),
        ("wrong issuer", bearer(_token(TEST_SECRET, sub=staff_id, iss="evil")), "invalid_token"),
        ("unknown role", bearer(_token(TEST_SECRET, sub=staff_id, role="root")), "invalid_token"),
        ("no subject", bearer(_token(TEST_SECRET, sub=None)), "invalid_token"),
        ("no expiry", bearer(_token(TEST_SECRET, sub=staff_id, exp=None)), "invalid_token"),
        ("expired", bearer(_token(TEST_SECRET, sub=staff_id, exp=an_hour_ago)), "token_expired"),
    ]


async def test_every_route_the_app_serves_has_an_authorization_case(app: FastAPI) -> None:
    # the console checks its own sessions: tests/e2e/test_console_http.py covers its routes
    served = app_routes(app) - {"? /console"}
    described = {case.id for case in ROUTES}
    assert served - described == set(), "routes without an authorization case"
    assert described - served == set(), "cases for routes the app does not serve"


@pytest.mark.parametrize("case", routes(Access.PUBLIC))
async def test_public_routes_answer_without_a_token(
    client: httpx.AsyncClient, world: World, case: RouteCase
) -> None:
    response = await case.send(client, world)
    assert response.status_code == case.status, response.text


@pytest.mark.parametrize("case", routes(*PROTECTED))
async def test_protected_routes_refuse_missing_forged_and_expired_tokens(
    client: httpx.AsyncClient, world: World, case: RouteCase
) -> None:
    for name, header, code in _bad_credentials(world.staff.id):
        headers = {"Authorization": header} if header else {}
        body = await world.refused(case.send(client, world, headers=headers), 401)
        assert body["code"] == code, (name, body)


@pytest.mark.parametrize("case", routes(*PROTECTED))
async def test_every_401_carries_a_bearer_challenge_naming_an_unusable_token(
    client: httpx.AsyncClient, world: World, case: RouteCase
) -> None:
    for name, header, code in _bad_credentials(world.staff.id):
        headers = {"Authorization": header} if header else {}
        response = await case.send(client, world, headers=headers)
        assert response.status_code == 401, (name, response.text)
        challenges = response.headers.get_list("www-authenticate")
        assert len(challenges) == 1, (name, response.headers)
        assert challenges[0].startswith('Bearer realm="mercato"'), (name, challenges)
        # RFC 6750: a missing token gets no error; a token sent but unusable is invalid_token
        assert ('error="invalid_token"' in challenges[0]) is (code != "unauthenticated"), name


@pytest.mark.parametrize(
    "case", [p for p in routes(Access.PUBLIC) if p.values[0].path.startswith("/v1/products")]
)
async def test_a_forged_token_is_refused_even_where_none_is_needed(
    client: httpx.AsyncClient, world: World, case: RouteCase
) -> None:
    forged = {"Authorization": f"Bearer {_token('not-the-secret-not-the-secret-00000')}"}
    await world.refused(case.send(client, world, headers=forged), 401, "invalid_token")


@pytest.mark.parametrize("case", routes(Access.STAFF, Access.ORDER_STAFF))
async def test_customers_are_forbidden_staff_routes(
    client: httpx.AsyncClient, world: World, case: RouteCase
) -> None:
    request = case.send(client, world, headers=world.owner.auth)
    await world.refused(request, 403, "staff_only")


@pytest.mark.parametrize("case", routes(*ORDER_ROUTES))
async def test_another_customers_order_does_not_exist_for_you(
    client: httpx.AsyncClient, world: World, case: RouteCase
) -> None:
    request = case.send(client, world, headers=world.other.auth)
    body = await world.refused(request, 404, "order_not_found")
    assert body["order_id"] == world.order["id"]


@pytest.mark.parametrize("case", routes(*ORDER_ROUTES))
async def test_an_unknown_order_looks_exactly_like_another_customers(
    client: httpx.AsyncClient, world: World, case: RouteCase
) -> None:
    unknown = "01900000-0000-7000-8000-000000000000"
    theirs = await case.send(client, world, headers=world.other.auth)
    missing = await case.send(client, world, headers=world.owner.auth, order_id=unknown)
    assert_problem(missing, 404, "order_not_found")
    assert theirs.json()["detail"] == missing.json()["detail"]
    assert theirs.json().keys() == missing.json().keys()


@pytest.mark.parametrize("case", routes(Access.ORDER_READ))
async def test_staff_may_read_any_order(
    client: httpx.AsyncClient, world: World, case: RouteCase
) -> None:
    async with world.unchanged():
        response = await case.send(client, world, headers=world.staff.auth)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("case", routes(Access.ORDER_OWNER))
async def test_staff_may_not_edit_or_place_a_customers_draft(
    client: httpx.AsyncClient, world: World, case: RouteCase
) -> None:
    request = case.send(client, world, headers=world.staff.auth)
    await world.refused(request, 403, "not_order_owner")


@pytest.mark.parametrize("case", routes(Access.ORDER_OWNER, Access.ORDER_CANCEL))
async def test_the_owner_may_change_their_own_draft(
    client: httpx.AsyncClient, app: FastAPI, case: RouteCase
) -> None:
    world = await build_world(client, app)
    response = await case.send(client, world, headers=world.owner.auth)
    assert response.status_code == 200, response.text


async def test_staff_may_cancel_a_customers_order(client: httpx.AsyncClient, app: FastAPI) -> None:
    world = await build_world(client, app)
    cancel = next(case for case in ROUTES if case.path.endswith("/cancel"))
    response = await cancel.send(client, world, headers=world.staff.auth)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"


async def test_a_customer_lists_only_their_own_orders_whatever_they_ask_for(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    params = {"customer_id": world.owner.id}
    theirs = await client.get("/v1/orders", params=params, headers=world.other.auth)
    assert theirs.status_code == 200
    assert theirs.json()["items"] == []
    staff = await client.get("/v1/orders", params=params, headers=world.staff.auth)
    assert [o["id"] for o in staff.json()["items"]] == [world.order["id"]]


async def test_customers_see_no_stock_details_and_no_inactive_products(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    path = f"/v1/products/{world.product['id']}"
    public = await client.get(path, headers=world.owner.auth)
    assert "reserved" not in public.json()
    assert "sold" not in public.json()
    staff = await client.get(path, headers=world.staff.auth)
    assert staff.json()["reserved"] == 0
    hidden = await client.patch(path, json={"active": False}, headers=world.staff.auth)
    assert hidden.status_code == 200
    for headers in ({}, world.owner.auth):
        gone = await client.get(path, headers=headers)
        assert_problem(gone, 404, "product_not_found")
    assert (await client.get(path, headers=world.staff.auth)).json()["active"] is False


async def test_a_token_for_a_deleted_or_unknown_account_reads_nothing(
    client: httpx.AsyncClient, world: World
) -> None:
    for role in ("customer", "staff"):
        ghost = {"Authorization": f"Bearer {_token(TEST_SECRET, role=role)}"}
        for path in ("/v1/customers/me", "/v1/orders", f"/v1/orders/{world.order['id']}"):
            await world.refused(client.get(path, headers=ghost), 401, "unknown_account")


async def test_problems_for_authorization_are_problem_json_with_the_request_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/customers", headers={"X-Request-ID": "auth-check-1"})
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["x-request-id"] == "auth-check-1"
    assert response.json()["request_id"] == "auth-check-1"


# -- authority comes from the account ---------------------------------------------------------

_CUSTOMERS = metadata.tables["customers_customers"]
_SET_ROLE = sql(
    sa.update(_CUSTOMERS)
    .where(_CUSTOMERS.c.id == sa.bindparam("id"))
    .values(role=sa.bindparam("role"))
)


async def _set_role(app: FastAPI, user_id: str, role: str) -> None:
    """Change an account's role in the database, as an administrator's tool in another process
    would, and wait as long as the application may take to notice."""
    container: Container = app.state.container
    async with container.db.transaction() as conn:
        await conn.execute(_SET_ROLE, id=user_id, role=role)
    await asyncio.sleep(ACCOUNT_CACHE_S)


async def _deactivate(app: FastAPI, *user_ids: str) -> None:
    container: Container = app.state.container
    for user_id in user_ids:
        await container.customers.set_active(user_id, active=False)


@pytest.fixture(scope="module")
async def retired(app: FastAPI) -> World:
    """A world whose staff member and order owner have both been deactivated since they logged
    in (their tokens are still validly signed and unexpired). Another staff account stays
    active, so the deactivation is allowed whichever tests ran before on this database."""
    made = await shared_world(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
        await staff_user(http, app.state.container)
    await _deactivate(app, made.staff.id, made.owner.id)
    return made


@pytest.fixture(scope="module")
async def changed_roles(app: FastAPI) -> World:
    """A world whose staff member was demoted to customer, and whose order owner was promoted to
    staff, after they logged in."""
    made = await shared_world(app)
    await _set_role(app, made.staff.id, "customer")
    await _set_role(app, made.owner.id, "staff")
    return made


def _ghosts(world: World) -> list[tuple[str, dict[str, str]]]:
    """Validly signed, unexpired tokens whose subject is no account (or not this one)."""
    bearer = "Bearer {}".format
    return [
        ("unknown staff", {"Authorization": bearer(_token(TEST_SECRET, role="staff"))}),
        ("unknown customer", {"Authorization": bearer(_token(TEST_SECRET, role="customer"))}),
        (
            "an order id as subject",
            {"Authorization": bearer(_token(TEST_SECRET, sub=world.order["id"]))},
        ),
    ]


@pytest.mark.parametrize("case", routes(*PROTECTED))
async def test_a_deactivated_accounts_token_is_refused_on_every_protected_route(
    client: httpx.AsyncClient, retired: World, case: RouteCase
) -> None:
    for who in (retired.staff, retired.owner):
        async with asyncio.timeout(10):  # an event stream let through would never end
            body = await retired.refused(case.send(client, retired, headers=who.auth), 403)
        assert body["code"] == "account_inactive", (who, body)


@pytest.mark.parametrize("case", routes(*PROTECTED))
async def test_a_signed_token_of_an_unknown_account_is_refused_on_every_protected_route(
    client: httpx.AsyncClient, world: World, case: RouteCase
) -> None:
    for name, headers in _ghosts(world):
        async with asyncio.timeout(10):
            body = await world.refused(case.send(client, world, headers=headers), 401)
        assert body["code"] == "unknown_account", (name, body)


@pytest.mark.parametrize("case", routes(*PROTECTED))
async def test_a_token_whose_account_changed_role_is_refused_on_every_protected_route(
    client: httpx.AsyncClient, changed_roles: World, case: RouteCase
) -> None:
    for who in (changed_roles.staff, changed_roles.owner):
        async with asyncio.timeout(10):
            body = await changed_roles.refused(
                case.send(client, changed_roles, headers=who.auth), 403
            )
        assert body["code"] == "role_changed", (who, body)


@pytest.mark.parametrize(
    "case", [p for p in routes(Access.PUBLIC) if p.values[0].path.startswith("/v1/products")]
)
async def test_a_token_sent_where_none_is_needed_is_checked_against_its_account_too(
    client: httpx.AsyncClient, world: World, retired: World, case: RouteCase
) -> None:
    for name, headers in _ghosts(world):
        body = await world.refused(case.send(client, world, headers=headers), 401)
        assert body["code"] == "unknown_account", (name, body)
    for who in (retired.staff, retired.owner):
        request = case.send(client, retired, headers=who.auth)
        await retired.refused(request, 403, "account_inactive")


async def test_a_demoted_staff_member_who_logs_in_again_is_a_customer(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    await _set_role(app, world.staff.id, "customer")
    again = await client.post(
        "/v1/auth/token", json={"email": world.staff.email, "password": "staff password 1"}
    )
    assert again.json()["role"] == "customer"
    demoted = {"Authorization": f"Bearer {again.json()['access_token']}"}
    everyone = await client.get("/v1/orders", headers=demoted)
    assert everyone.status_code == 200
    assert everyone.json()["items"] == []
    await world.refused(client.get("/v1/customers", headers=demoted), 403, "staff_only")
    order = f"/v1/orders/{world.order['id']}"
    await world.refused(client.get(order, headers=demoted), 404, "order_not_found")


async def test_a_deactivated_customer_cannot_create_edit_or_place_a_draft(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    await _deactivate(app, world.owner.id)
    order, owner = f"/v1/orders/{world.order['id']}", world.owner.auth
    line = {"product_id": world.spare["id"], "quantity": 1}
    for request in (
        client.post("/v1/orders", json={"lines": [line]}, headers=owner),
        client.post(f"{order}/lines", json=line, headers=owner),
        client.put(f"{order}/discount", json={"code": "WELCOME10"}, headers=owner),
        client.post(f"{order}/place", json={"card_number": "4242 4242 4242 4242"}, headers=owner),
        client.post(f"{order}/cancel", headers=owner),
    ):
        await world.refused(request, 403, "account_inactive")


async def test_deactivating_staff_ends_their_powers_at_once_in_the_same_process(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    clerk = await staff_user(client, app.state.container)
    everyone = await client.get("/v1/orders", headers=clerk.auth)  # the account is remembered
    assert everyone.status_code == 200
    gone = await client.post(f"/v1/customers/{clerk.id}/deactivate", headers=world.staff.auth)
    assert gone.status_code == 200
    order = f"/v1/orders/{world.order['id']}"
    for request in (
        client.get("/v1/orders", headers=clerk.auth),
        client.get(order, headers=clerk.auth),
        client.get(f"{order}/payments", headers=clerk.auth),
        client.post(f"{order}/cancel", headers=clerk.auth),
        client.get("/v1/events", headers=clerk.auth),
    ):
        await world.refused(request, 403, "account_inactive")


async def test_another_process_refuses_a_deactivated_account_within_one_second(
    client: httpx.AsyncClient, app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    world = await build_world(client, app)
    boss = await staff_user(client, app.state.container)
    with running_server(database_url, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as elsewhere:
            product = f"/v1/products/{world.product['id']}"
            for _ in range(3):  # the other process now remembers both accounts
                listed = await elsewhere.get("/v1/orders", headers=world.staff.auth)
                assert listed.status_code == 200
                assert (await elsewhere.get(product, headers=world.owner.auth)).status_code == 200
            for user in (world.staff, world.owner):
                gone = await client.post(f"/v1/customers/{user.id}/deactivate", headers=boss.auth)
                assert gone.status_code == 200
            deactivated = time.monotonic()
            refused: dict[str, float] = {}
            while len(refused) < 2 and time.monotonic() - deactivated < 3:
                for name, path, user in (
                    ("staff", "/v1/orders", world.staff),
                    ("owner", product, world.owner),
                ):
                    if name not in refused:
                        answer = await elsewhere.get(path, headers=user.auth)
                        if answer.status_code == 403:
                            assert_problem(answer, 403, "account_inactive")
                            refused[name] = time.monotonic() - deactivated
    assert refused.keys() == {"staff", "owner"}
    assert max(refused.values()) <= ACCOUNT_CACHE_S + 0.1, refused
