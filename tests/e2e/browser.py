"""Driving Debian's chromium through playwright, against a real mercato server.

``playwright install`` cannot download a browser here; the system's chromium (installed by
``deploy/install-chromium``) is launched instead, headless and without anything that reaches out
to the network on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from mercato.payments import SUCCESS_CARD
from tests.conftest import unique

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADDRESS = {
    "street": "Unter den Linden 1",
    "city": "Berlin",
    "country": "DE",
    "postal_code": "10117",
}
PASSWORD = "correct horse battery"
# Records what the page's Content-Security-Policy refused, from before any page script runs.
CSP_WATCH = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium, closed (with its child processes) afterwards."""
    with sync_playwright() as driver:
        browser = _launch(driver)
        try:
            yield browser
        finally:
            browser.close()


def _launch(driver: Playwright) -> Browser:
    return driver.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


@dataclass
class Tab:
    """A page with everything it logged as an error, and the bytes it loaded."""

    page: Page
    errors: list[str] = field(default_factory=list)
    loaded: list[tuple[str, int]] = field(default_factory=list)
    uncached: bool = False

    def problems(self) -> list[str]:
        """JavaScript errors, console errors and CSP violations seen so far."""
        violations: list[str] = self.page.evaluate("window.__csp || []")
        return self.errors + [f"CSP: {v}" for v in violations]

    def weight(self, url: str) -> int:
        """Bytes transferred to load ``url`` and everything it pulled in (no cache)."""
        if not self.uncached:  # playwright turns the HTTP cache off while requests are routed
            self.page.route("**/*", lambda route: route.continue_())
            self.uncached = True
        self.loaded.clear()
        self.page.goto(url)
        self.page.wait_for_load_state("networkidle")
        return sum(size for _, size in self.loaded)


def open_tab(context: BrowserContext) -> Tab:
    """A new page that records its errors and the size of every response."""
    page = context.new_page()
    tab = Tab(page)
    page.on("console", lambda m: _console(tab, m.type, m.text))
    page.on("pageerror", lambda e: tab.errors.append(f"pageerror: {e}"))
    page.on("response", lambda r: _subresource(tab, r))
    page.on("requestfinished", lambda r: tab.loaded.append((r.url, _transferred(r))))
    return tab


def _console(tab: Tab, kind: str, text: str) -> None:
    # Chromium logs every 4xx answer as "Failed to load resource"; a form refused with 409 or
    # 422 is the page working. Failed subresources are caught by _subresource instead.
    if kind == "error" and not text.startswith("Failed to load resource"):
        tab.errors.append(text)


def _subresource(tab: Tab, response: Any) -> None:
    if response.status >= 400 and response.request.resource_type != "document":
        tab.errors.append(f"{response.status} {response.url}")


def _transferred(request: Any) -> int:
    sizes = request.sizes()
    return int(sizes["responseBodySize"] + sizes["responseHeadersSize"])


def new_context(browser: Browser, *, width: int = 1280, height: int = 900) -> BrowserContext:
    """A fresh browser profile (no cookies), watching for CSP violations."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_init_script(CSP_WATCH)
    return context


def sign_in(tab: Tab, base_url: str, email: str, password: str) -> None:
    """Fill in and send the console's sign-in form."""
    tab.page.goto(f"{base_url}/console/login")
    tab.page.get_by_label("E-mail").fill(email)
    tab.page.get_by_label("Password").fill(password)
    tab.page.get_by_role("button", name="Sign in").click()
    tab.page.wait_for_load_state("networkidle")


@dataclass
class Api:
    """The HTTP API of the same server, for arranging data and checking what the console did."""

    http: httpx.Client
    staff_email: str
    staff_token: str

    @property
    def staff(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.staff_token}"}

    def account(self, *, role: str = "customer") -> tuple[str, str, str]:
        """A new account: (id, e-mail, token); staff accounts are made by ``make_staff``."""
        email = f"{unique(role[0])}@example.com"
        made = self.http.post(
            "/v1/customers", json={"email": email, "password": PASSWORD, "name": "Browser"}
        )
        assert made.status_code == 201, made.text
        token = self.token(email)
        return made.json()["id"], email, token

    def token(self, email: str, password: str = PASSWORD) -> str:
        answer = self.http.post("/v1/auth/token", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def product(self, *, stock: int = 20) -> dict[str, Any]:
        body = {
            "sku": unique("BR").upper(),
            "name": "Browser test product",
            "description": "made by the console's browser tests",
            "price": {"amount": 1250, "currency": "EUR"},
            "weight_grams": 300,
            "initial_stock": stock,
        }
        made = self.http.post("/v1/products", json=body, headers=self.staff)
        assert made.status_code == 201, made.text
        return dict(made.json())

    def place_order(self, product_id: str, customer_token: str) -> dict[str, Any]:
        """A draft made and placed (paid with the sandbox's good card): an open order."""
        auth = {"Authorization": f"Bearer {customer_token}"}
        body = {"lines": [{"product_id": product_id, "quantity": 1}], "shipping_address": ADDRESS}
        made = self.http.post("/v1/orders", json=body, headers=auth)
        assert made.status_code == 201, made.text
        placed = self.http.post(
            f"/v1/orders/{made.json()['id']}/place",
            json={"card_number": SUCCESS_CARD},
            headers=auth,
        )
        assert placed.status_code == 200, placed.text
        return dict(placed.json())

    def order(self, order_id: str) -> dict[str, Any]:
        got = self.http.get(f"/v1/orders/{order_id}", headers=self.staff)
        assert got.status_code == 200, got.text
        return dict(got.json())


def wait_for(predicate: Any, *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
