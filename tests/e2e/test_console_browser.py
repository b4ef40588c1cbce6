"""The staff console in a real browser (Debian's chromium through playwright), against a real
server: sign-in, CSRF, live orders, fulfilment, conflicts, stock, and no page errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from playwright.sync_api import Browser, expect

from mercato.cli.demo import create_staff
from tests.conftest import make_settings, unique
from tests.e2e.browser import PASSWORD, Api, Tab, chromium, new_context, open_tab, sign_in
from tests.e2e.server import Server, running_server

LIVE_WITHIN_S = 2.0
# form controls a screen reader could not name: no <label> and no aria-label
UNLABELLED = """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map(e => e.name)"""
PAGE_BUDGET = 100_000


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(database_url, tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(database_url: str) -> Iterator[Browser]:
    # one browser per database: playwright runs an event loop in this thread while it is open,
    # so the next database must be migrated (Alembic runs a loop of its own) before it starts
    with chromium() as launched:
        yield launched


def _staff(database_url: str) -> str:
    email = f"{unique('staff')}@example.com"
    settings = make_settings(database_url)
    # in a thread of its own: playwright's sync API keeps an event loop running in this one
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            asyncio.run,
            create_staff(settings, email=email, name="Console Staff", password=PASSWORD),
        ).result()
    return email


@pytest.fixture(scope="module")
def api(server: Server, database_url: str) -> Iterator[Api]:
    email = _staff(database_url)
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        token = Api(http, email, "").token(email)
        yield Api(http, email, token)


@pytest.fixture
def tab(browser: Browser, server: Server, api: Api) -> Iterator[Tab]:
    """A signed-in staff tab; the test fails if any page logged an error or broke the CSP."""
    context = new_context(browser)
    opened = open_tab(context)
    sign_in(opened, server.base_url, api.staff_email, PASSWORD)
    yield opened
    problems = opened.problems()
    context.close()
    assert problems == []


def test_staff_sign_in_and_land_on_the_dashboard(tab: Tab, server: Server) -> None:
    expect(tab.page.get_by_role("heading", name="Today")).to_be_visible()
    cookie = next(c for c in tab.page.context.cookies() if c["name"] == "mercato_console")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/console"


def test_a_customer_and_a_wrong_password_are_refused(
    browser: Browser, server: Server, api: Api
) -> None:
    _, customer_email, _ = api.account()
    context = new_context(browser)
    visitor = open_tab(context)

    sign_in(visitor, server.base_url, customer_email, PASSWORD)
    expect(visitor.page.locator("#email-error")).to_contain_text("not a staff account")
    assert not [c for c in context.cookies() if c["name"] == "mercato_console"]

    sign_in(visitor, server.base_url, api.staff_email, "not the password")
    expect(visitor.page.locator("#password-error")).to_have_text("The e-mail or password is wrong.")
    expect(visitor.page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    assert not [c for c in context.cookies() if c["name"] == "mercato_console"]

    visitor.page.goto(f"{server.base_url}/console/orders")
    assert visitor.page.url.startswith(f"{server.base_url}/console/login")
    context.close()


def test_a_form_without_the_session_csrf_token_is_refused(
    tab: Tab, server: Server, api: Api
) -> None:
    product = api.product(stock=5)
    answer = tab.page.request.post(
        f"{server.base_url}/console/products/{product['id']}/stock",
        form={"delta": "50", "reason": "forged", "csrf": "0" * 64},
        max_redirects=0,
    )
    assert answer.status == 403
    forged_again = tab.page.request.post(
        f"{server.base_url}/console/products/{product['id']}/stock",
        form={"delta": "50", "reason": "no token"},
        max_redirects=0,
    )
    assert forged_again.status == 403
    got = api.http.get(f"/v1/products/{product['id']}", headers=api.staff).json()
    assert got["available"] == 5


def test_an_order_placed_through_the_api_appears_on_the_open_orders_page(
    tab: Tab, server: Server, api: Api
) -> None:
    product = api.product()
    _, _, customer = api.account()
    tab.page.goto(f"{server.base_url}/console/orders?status=placed")
    expect(tab.page.locator("#live-state[data-connected=true]")).to_be_attached()

    started = time.monotonic()
    order = api.place_order(product["id"], customer)
    row = tab.page.locator(f"tr[data-order='{order['id']}']")
    expect(row).to_be_visible(timeout=LIVE_WITHIN_S * 1000)
    shown_after = time.monotonic() - started
    assert shown_after < LIVE_WITHIN_S
    print(f"order placed -> shown on the open orders page: {shown_after * 1000:.0f} ms")


def test_confirm_ship_and_deliver_through_the_console_and_the_api_agrees(
    tab: Tab, server: Server, api: Api
) -> None:
    product = api.product()
    _, _, customer = api.account()
    order = api.place_order(product["id"], customer)
    tab.page.goto(f"{server.base_url}/console/orders/{order['id']}")

    tab.page.get_by_role("button", name="Confirm").click()
    expect(tab.page.locator("#order-status")).to_have_text("confirmed")
    tab.page.get_by_label("Tracking code").fill("TRACK-123")
    tab.page.get_by_role("button", name="Ship").click()
    expect(tab.page.locator("#order-status")).to_have_text("shipped")
    tab.page.get_by_role("button", name="Deliver").click()
    expect(tab.page.locator("#order-status")).to_have_text("delivered")

    seen = api.order(order["id"])
    assert seen["status"] == "delivered"
    assert seen["tracking_code"] == "TRACK-123"
    expect(tab.page.locator(".history")).to_contain_text("OrderDelivered")


def test_an_action_from_a_stale_page_shows_the_conflict_and_changes_nothing(
    tab: Tab, server: Server, api: Api
) -> None:
    product = api.product()
    _, _, customer = api.account()
    order = api.place_order(product["id"], customer)
    tab.page.goto(f"{server.base_url}/console/orders/{order['id']}")
    # meanwhile someone else confirms it through the API
    confirmed = api.http.post(f"/v1/orders/{order['id']}/confirm", headers=api.staff)
    assert confirmed.status_code == 200, confirmed.text

    tab.page.get_by_label("Reason for cancelling").fill("customer asked")
    tab.page.get_by_role("button", name="Cancel").click()
    expect(tab.page.get_by_role("alert")).to_contain_text("changed meanwhile")
    expect(tab.page.locator("#order-status")).to_have_text("confirmed")
    assert api.order(order["id"])["status"] == "confirmed"
    # the page now shows the current version: the same action goes through
    tab.page.get_by_label("Reason for cancelling").fill("customer asked")
    tab.page.get_by_role("button", name="Cancel").click()
    expect(tab.page.locator("#order-status")).to_have_text("cancelled")


def test_a_stock_adjustment_updates_the_product_and_its_audit_trail(
    tab: Tab, server: Server, api: Api
) -> None:
    product = api.product(stock=4)
    tab.page.goto(f"{server.base_url}/console/products/{product['id']}")

    tab.page.get_by_label("Change in units").fill("-9")
    tab.page.get_by_label("Reason", exact=True).fill("breakage")
    tab.page.get_by_role("button", name="Adjust").click()
    expect(tab.page.locator("#delta-error")).to_be_visible()
    expect(tab.page.locator("#available")).to_have_text("4")

    tab.page.get_by_label("Change in units").fill("7")
    tab.page.get_by_label("Reason", exact=True).fill("delivery from supplier")
    tab.page.get_by_role("button", name="Adjust").click()
    expect(tab.page.locator("#available")).to_have_text("11")
    expect(tab.page.locator("#audit")).to_contain_text("delivery from supplier")
    got = api.http.get(f"/v1/products/{product['id']}", headers=api.staff).json()
    assert got["available"] == 11


def test_a_product_form_shows_each_error_next_to_its_field(tab: Tab, server: Server) -> None:
    tab.page.goto(f"{server.base_url}/console/products/new")
    tab.page.get_by_label("SKU").fill(unique("NEW").upper())
    tab.page.get_by_label("Name").fill("Console product")
    tab.page.get_by_label("Price").fill("12.345")
    tab.page.get_by_role("button", name="Create product").click()
    expect(tab.page.locator("#price-error")).to_contain_text("at most 2 decimal places")

    tab.page.get_by_label("Price").fill("12.50")
    tab.page.get_by_role("button", name="Create product").click()
    expect(tab.page.get_by_role("heading", name="Console product")).to_be_visible()
    expect(tab.page.locator("#price")).to_have_value("12.50")


def test_a_deactivated_account_loses_the_console_at_once(
    browser: Browser, server: Server, api: Api, database_url: str
) -> None:
    email = _staff(database_url)
    context = new_context(browser)
    other = open_tab(context)
    sign_in(other, server.base_url, email, PASSWORD)
    expect(other.page.get_by_role("heading", name="Today")).to_be_visible()
    user_id = api.http.get(
        "/v1/customers/me", headers={"Authorization": f"Bearer {api.token(email)}"}
    ).json()["id"]

    off = api.http.post(f"/v1/customers/{user_id}/deactivate", headers=api.staff)
    assert off.status_code == 200, off.text
    other.page.goto(f"{server.base_url}/console/orders")
    assert "/console/login" in other.page.url
    expect(other.page.get_by_role("alert")).to_contain_text("deactivated")
    context.close()


def test_staff_cannot_deactivate_themselves_from_the_customers_page(
    tab: Tab, server: Server, api: Api
) -> None:
    tab.page.goto(f"{server.base_url}/console/customers?q={api.staff_email}")
    tab.page.get_by_role("button", name=f"Deactivate {api.staff_email}").click()
    expect(tab.page.locator("#account-error")).to_contain_text("your own account")
    me = api.http.get("/v1/customers/me", headers=api.staff)
    assert me.json()["active"] is True


def test_every_page_loads_without_errors_and_under_the_weight_budget(
    tab: Tab, browser: Browser, server: Server, api: Api
) -> None:
    product = api.product()
    _, _, customer = api.account()
    order = api.place_order(product["id"], customer)
    base = f"{server.base_url}/console"
    pages = [
        "/",
        "/orders",
        f"/orders/{order['id']}",
        "/products",
        f"/products/{product['id']}",
        "/products/new",
        "/customers",
    ]
    narrow = open_tab(new_context(browser, width=390, height=844))
    sign_in(narrow, server.base_url, api.staff_email, PASSWORD)
    for path in pages:
        weight = tab.weight(base + path)
        assert 0 < weight < PAGE_BUDGET, (path, weight)
        assert tab.problems() == [], path
        assert tab.page.evaluate(UNLABELLED) == [], path
        narrow.page.goto(base + path)
        # readable at 390 px: nothing but the tables' own scroll areas is wider than the screen
        assert narrow.page.evaluate("document.documentElement.scrollWidth") <= 390, path
    assert narrow.problems() == []
    narrow.page.context.close()


def test_sign_in_and_the_pages_can_be_reached_from_the_keyboard(
    browser: Browser, server: Server, api: Api
) -> None:
    context = new_context(browser)
    tab = open_tab(context)
    tab.page.goto(f"{server.base_url}/console/login")
    _tab_to(tab, "#email")
    tab.page.keyboard.type(api.staff_email)
    tab.page.keyboard.press("Tab")
    tab.page.keyboard.type(PASSWORD)
    tab.page.keyboard.press("Enter")
    expect(tab.page.get_by_role("heading", name="Today")).to_be_visible()

    _tab_to(tab, "nav a[href$='/products']")
    tab.page.keyboard.press("Enter")
    expect(tab.page.get_by_role("heading", name="Catalog")).to_be_visible()
    _tab_to(tab, "#q")
    tab.page.keyboard.type("no such product anywhere")
    tab.page.keyboard.press("Enter")
    expect(tab.page.get_by_text("No products match.")).to_be_visible()
    assert tab.problems() == []
    context.close()


def _tab_to(tab: Tab, selector: str, *, presses: int = 15) -> None:
    """Press Tab until ``selector`` has the focus (failing after ``presses``)."""
    for _ in range(presses):
        tab.page.keyboard.press("Tab")
        if tab.page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")
