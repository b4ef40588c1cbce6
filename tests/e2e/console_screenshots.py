"""Screenshots of every console page at 1280 and 390 px, and what the pages weigh.

``make console-screenshots`` (``python -m tests.e2e.console_screenshots docs/console``) starts
a server on a fresh SQLite database with the demo data, places a few orders through the API,
photographs each page at both widths, and writes ``measurements.md`` beside the pictures: the
bytes each page transfers and how long an order placed through the API takes to show on the
open orders page (five orders, median and maximum).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from mercato.cli.demo import CUSTOMER_EMAIL, CUSTOMER_PASSWORD, STAFF_EMAIL, STAFF_PASSWORD
from tests.e2e.browser import Api, Tab, chromium, new_context, open_tab, sign_in
from tests.e2e.server import running_server, server_env

WIDTHS = {1280: 900, 390: 844}


def _prepare(url: str) -> None:
    for command in (["db", "upgrade"], ["demo-data"]):
        subprocess.run(
            [sys.executable, "-m", "mercato", *command],
            env=server_env(url),
            check=True,
            capture_output=True,
        )


def _orders(api: Api) -> dict[str, str]:
    """Orders in each open state, made through the API; their ids by state."""
    customer = api.token(CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    product = api.http.get("/v1/products?limit=3").json()["items"]
    made = {}
    for state, product_row in zip(("placed", "confirmed", "shipped"), product, strict=True):
        order = api.place_order(product_row["id"], customer)
        if state in ("confirmed", "shipped"):
            api.http.post(f"/v1/orders/{order['id']}/confirm", headers=api.staff)
        if state == "shipped":
            api.http.post(
                f"/v1/orders/{order['id']}/ship",
                json={"tracking_code": "DHL-0042"},
                headers=api.staff,
            )
        made[state] = order["id"]
    return made


def _pages(made: dict[str, str], product_id: str) -> dict[str, str]:
    return {
        "dashboard": "/",
        "orders": "/orders",
        "order": f"/orders/{made['confirmed']}",
        "products": "/products",
        "product": f"/products/{product_id}",
        "product-new": "/products/new",
        "customers": "/customers",
    }


def _latency(tab: Tab, base: str, api: Api, product_id: str, runs: int = 5) -> list[float]:
    customer = api.token(CUSTOMER_EMAIL, CUSTOMER_PASSWORD)
    tab.page.goto(f"{base}/console/orders?status=placed")
    expect(tab.page.locator("#live-state[data-connected=true]")).to_be_attached()
    seen = []
    for _ in range(runs):
        started = time.monotonic()
        order = api.place_order(product_id, customer)
        expect(tab.page.locator(f"tr[data-order='{order['id']}']")).to_be_visible(timeout=5000)
        seen.append((time.monotonic() - started) * 1000)
    return seen


def _shoot(browser: Browser, base: str, pages: dict[str, str], out: Path) -> dict[str, int]:
    weights: dict[str, int] = {}
    for width, height in WIDTHS.items():
        context = new_context(browser, width=width, height=height)
        tab = open_tab(context)
        tab.page.goto(f"{base}/console/login")
        tab.page.screenshot(path=out / f"login-{width}.png", full_page=True)
        sign_in(tab, base, STAFF_EMAIL, STAFF_PASSWORD)
        for name, path in pages.items():
            weight = tab.weight(f"{base}/console{path}")
            weights.setdefault(name, weight)
            tab.page.screenshot(path=out / f"{name}-{width}.png", full_page=True)
        assert tab.problems() == [], tab.problems()
        context.close()
    return weights


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'console.db'}"
        _prepare(url)
        with running_server(url, Path(tmp)) as server, chromium() as browser:
            http = httpx.Client(base_url=server.base_url, timeout=10)
            api = Api(http, STAFF_EMAIL, "")
            api.staff_token = api.token(STAFF_EMAIL, STAFF_PASSWORD)
            made = _orders(api)
            product_id = http.get("/v1/products?limit=5").json()["items"][4]["id"]
            weights = _shoot(browser, server.base_url, _pages(made, product_id), out)
            context = new_context(browser)
            tab = open_tab(context)
            sign_in(tab, server.base_url, STAFF_EMAIL, STAFF_PASSWORD)
            latency = _latency(tab, server.base_url, api, product_id)
            context.close()
            http.close()
    _write(out / "measurements.md", weights, latency)


def _write(path: Path, weights: dict[str, int], latency: list[float]) -> None:
    lines = [
        "# Console measurements (written by `make console-screenshots`)",
        "",
        "Bytes transferred per page, first visit without cache, headers included:",
        "",
        "| page | bytes |",
        "|---|---|",
        *(f"| {name} | {size:,} |" for name, size in weights.items()),
        "",
        "An order placed through the API until it shows on the open orders page "
        f"({len(latency)} orders): median {statistics.median(latency):.0f} ms, "
        f"max {max(latency):.0f} ms.",
        "",
    ]
    path.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console"))
