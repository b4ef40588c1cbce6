"""The staff console over HTTP (no browser): headers, cookies, CSRF, throttling, hostile input,
the cookie-authenticated event stream, and a dashboard whose numbers match the API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

from mercato.bootstrap import Container
from mercato.customers import Role
from mercato.payments import DECLINED_CARD, SUCCESS_CARD
from tests.conftest import unique
from tests.e2e.helpers import create_product, draft, register, running_app, staff_user

pytestmark = pytest.mark.anyio

PASSWORD = "staff password 1"
ZERO = "00000000-0000-7000-8000-000000000000"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(database_url, login_max_failures=3) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
        yield http


async def _staff_email(app: FastAPI) -> str:
    container: Container = app.state.container
    email = f"{unique('s')}@example.com"
    await container.customers.register(
        email=email, password=PASSWORD, name="Staff", role=Role.STAFF
    )
    return email


async def _sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, next_url: str = ""
) -> httpx.Response:
    page = await client.get("/console/login")
    nonce = CSRF.search(page.text)
    assert nonce is not None
    form = {"email": email, "password": password, "csrf": nonce.group(1), "next": next_url}
    return await client.post("/console/login", data=form)


async def _csrf(client: httpx.AsyncClient, path: str = "/console/") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


async def test_pages_carry_a_strict_csp_and_refuse_framing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    login = await client.get("/console/login")
    await _sign_in(client, await _staff_email(app))
    for answer in (login, await client.get("/console/orders")):
        assert answer.status_code == 200
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert "<script>" not in answer.text  # every script is a file
        assert " style=" not in answer.text


async def test_the_session_cookie_is_httponly_strict_and_scoped_to_the_console(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    signed = await _sign_in(client, await _staff_email(app))
    assert signed.status_code == 303
    assert signed.headers["location"] == "/console/"
    cookie = next(
        c for c in signed.headers.get_list("set-cookie") if c.startswith("mercato_console=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # only outside dev and test: the tests run on plain http


async def test_sign_in_never_redirects_outside_the_console(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await _staff_email(app)
    for hostile in ("//evil.example/", "https://evil.example/", "/console//evil.example", "/\\e"):
        signed = await _sign_in(client, email, next_url=hostile)
        assert signed.headers["location"] == "/console/", hostile


async def test_a_sign_in_without_the_form_token_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await _staff_email(app)
    refused = await client.post(
        "/console/login", data={"email": email, "password": PASSWORD, "csrf": "guess"}
    )
    assert refused.status_code == 403
    assert "mercato_console=" not in refused.headers.get("set-cookie", "")


async def test_console_sign_in_is_throttled_like_the_api(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    email = await _staff_email(app)
    statuses = [(await _sign_in(client, email, "wrong password")).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # the API shares the count: the e-mail is locked there too
    api = await client.post("/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert api.status_code == 429
    throttled = await _sign_in(client, email)
    assert throttled.status_code == 429
    assert "Too many attempts" in throttled.text


async def test_sign_out_needs_the_token_and_ends_the_session(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await _sign_in(client, await _staff_email(app))
    forged = await client.post("/console/logout", data={"csrf": "x" * 64})
    assert forged.status_code == 403
    out = await client.post("/console/logout", data={"csrf": await _csrf(client)})
    assert out.status_code == 303
    after = await client.get("/console/orders")
    assert after.status_code == 303
    assert after.headers["location"].startswith("/console/login")


@pytest.mark.parametrize(
    "path",
    [
        "/console/orders?status=lost",
        "/console/orders?before=%%%",
        "/console/orders?q=" + "x" * 300,
        "/console/orders?q=%00%01",
        "/console/orders/" + "a" * 37,
        "/console/orders/" + "0" * 36,
        "/console/products/" + "0" * 36,
        "/console/products?after=not-a-cursor",
        "/console/customers?q=%25%5F%5C",
    ],
)
async def test_hostile_queries_get_a_page_that_says_why_never_a_500(
    client: httpx.AsyncClient, app: FastAPI, path: str
) -> None:
    await _sign_in(client, await _staff_email(app))
    answer = await client.get(path)
    assert answer.status_code in {200, 404, 422}, (path, answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith("text/html")


async def test_hostile_form_values_are_refused_next_to_their_fields(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await _sign_in(client, await _staff_email(app))
    token = await _csrf(client)
    sku = unique("H").upper()
    for field, value, message in [
        ("price", "-1", "positive amount"),
        ("price", "1e9", "positive amount"),
        ("price", "999999999999999", "Amount is too large"),
        ("weight_grams", "²", "whole number"),
        ("initial_stock", "99999999999", "Opening stock must be"),
    ]:
        form = {"csrf": token, "sku": sku, "name": "N", "price": "1.00", "weight_grams": "1"}
        answer = await client.post("/console/products", data={**form, field: value})
        assert answer.status_code == 422, (field, value)
        assert f'id="{field}-error"' in answer.text, (field, value)
        assert message in answer.text, answer.text


async def test_the_event_stream_needs_a_staff_session(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    anonymous = await client.get("/console/events")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    customer = await register(client)
    client.cookies.set("mercato_console", customer.token, path="/console")
    as_customer = await client.get("/console/events")
    assert as_customer.status_code == 403
    client.cookies.set("mercato_console", "forged.token.value", path="/console")
    forged = await client.get("/console/events")
    assert forged.status_code == 401


async def test_the_dashboard_counts_match_the_api(client: httpx.AsyncClient, app: FastAPI) -> None:
    container: Container = app.state.container
    staff = await staff_user(client, container)
    product = await create_product(client, staff, stock=10)
    customer = await register(client)
    for _ in range(2):
        made = await draft(client, customer, [(product["id"], 1)])
        placed = await client.post(
            f"/v1/orders/{made['id']}/place",
            json={"card_number": SUCCESS_CARD},
            headers=customer.auth,
        )
        assert placed.status_code == 200, placed.text
    await client.post(f"/v1/orders/{made['id']}/confirm", headers=staff.auth)

    async def api_count(status: str) -> int:
        count, cursor = 0, None
        while True:
            params = {"status": status, "limit": 100} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/v1/orders", params=params, headers=staff.auth)).json()
            count += len(page["items"])
            if not (cursor := page["next_cursor"]):
                return count

    await _sign_in(client, staff.email, "staff password 1")
    dashboard = (await client.get("/console/")).text
    to_confirm = re.search(r'id="to-confirm">(\d+)<', dashboard)
    to_ship = re.search(r'id="to-ship">(\d+)<', dashboard)
    assert to_confirm is not None
    assert to_ship is not None
    assert int(to_confirm.group(1)) == await api_count("placed")
    assert int(to_ship.group(1)) == await api_count("confirmed")


async def test_control_characters_in_a_form_are_refused_naming_the_field(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await _sign_in(client, await _staff_email(app))
    form = {"csrf": await _csrf(client), "sku": unique("C").upper(), "price": "1.00"}
    answer = await client.post("/console/products", data={**form, "name": "nul\x00name"})
    assert answer.status_code == 422
    assert "name must not contain control characters" in answer.text


async def test_the_dashboard_counts_a_declined_payment_and_todays_orders(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    container: Container = app.state.container
    staff = await staff_user(client, container)
    product = await create_product(client, staff, stock=10, price=1000)
    customer = await register(client)
    await _sign_in(client, staff.email, "staff password 1")

    def number(page: str, name: str) -> str:
        found = re.search(rf'id="{name}">([^<]+)<', page)
        assert found is not None, name
        return found.group(1)

    before = (await client.get("/console/")).text
    made = await draft(client, customer, [(product["id"], 1)])
    declined = await client.post(
        f"/v1/orders/{made['id']}/place", json={"card_number": DECLINED_CARD}, headers=customer.auth
    )
    assert declined.status_code == 402, declined.text
    placed = await client.post(
        f"/v1/orders/{made['id']}/place", json={"card_number": SUCCESS_CARD}, headers=customer.auth
    )
    assert placed.status_code == 200, placed.text
    after = (await client.get("/console/")).text

    assert int(number(after, "failed-payments")) == int(number(before, "failed-payments")) + 1
    assert int(number(after, "placed-today")) == int(number(before, "placed-today")) + 1
    total = placed.json()["totals"]["total"]["amount"]
    revenue_before = number(before, "revenue-today").split()[0].replace(".", "")
    revenue_after = number(after, "revenue-today").split()[0].replace(".", "")
    assert int(revenue_after) == int(revenue_before) + total


def _console_routes(app: FastAPI) -> list[tuple[str, str]]:
    console = next(r for r in app.routes if isinstance(r, Mount) and r.path == "/console")
    found = []
    for route in iter_route_contexts(console.routes):
        if route.methods:
            found += [(method, route.path) for method in sorted(route.methods) if method != "HEAD"]
    return found


async def test_every_console_page_and_form_needs_a_staff_session(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    routes = _console_routes(app)
    assert ("GET", "/orders/{order_id}") in routes
    customer = await register(client)
    for cookie in (None, customer.token, "forged"):
        client.cookies.clear()
        if cookie:
            client.cookies.set("mercato_console", cookie, path="/console")
        for method, path in routes:
            if path in ("/login", "/events"):  # the stream answers problems: tested above
                continue
            url = "/console" + path.format(
                order_id=ZERO, product_id=ZERO, customer_id=ZERO, action="deactivate"
            )
            answer = await client.request(
                method, url, data={"csrf": "x"} if method == "POST" else None
            )
            assert answer.status_code == 303, (cookie, method, path, answer.status_code)
            assert answer.headers["location"].startswith("/console/login"), (method, path)


async def test_a_lost_database_gets_a_page_asking_to_retry_not_a_500(database_url: str) -> None:
    async with running_app(database_url) as application:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
            page = await http.get("/console/login")
            nonce = CSRF.search(page.text)
            assert nonce is not None
            db = application.state.container.db
            await db.close()  # as if the database went away
            try:
                form = {"email": "a@example.com", "password": "x" * 12, "csrf": nonce.group(1)}
                answer = await http.post("/console/login", data=form)
            finally:
                await db.connect()
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert "Try again in a moment" in answer.text
