"""``mercato smoke``: check a deployed instance end to end, as the pipeline does after a deploy.

Steps: the three probes; a catalog read (list, then one product in stock); a customer who
registers and logs in; a draft order of one unit, placed with the sandbox card that succeeds,
its payment captured; then cleanup: the order is cancelled (stock back, payment refunded) and,
when staff credentials are given, the smoke customer is deactivated. Cleanup runs whatever
failed before it. Each step prints one line; the exit status is 0 only when all passed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

SANDBOX_SUCCESS_CARD = "4242 4242 4242 4242"
SMOKE_PASSWORD = "smoke-test-password-0123"  # a throw-away account's password
ADDRESS = {
    "street": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


class StepFailed(Exception):
    """A check did not hold; the message says what was expected and what came back."""


@dataclass
class Result:
    step: str
    ok: bool
    millis: float
    detail: str = ""


@dataclass
class Smoke:
    """One run against one base URL."""

    http: httpx.Client
    card: str = SANDBOX_SUCCESS_CARD
    staff: tuple[str, str] | None = None
    order: bool = True
    results: list[Result] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    def step(self, name: str, check: Callable[[], str]) -> bool:
        started = time.perf_counter()
        try:
            detail, ok = check(), True
        except StepFailed as exc:
            detail, ok = str(exc), False
        except httpx.HTTPError as exc:
            detail, ok = f"{type(exc).__name__}: {exc or 'no answer'}", False
        self.results.append(Result(name, ok, (time.perf_counter() - started) * 1000, detail))
        return ok

    def run(self) -> bool:
        """All steps in order; later steps are skipped once one fails, cleanup always runs."""
        steps: list[tuple[str, Callable[[], str]]] = [
            ("probes", self.probes),
            ("catalog", self.catalog),
        ]
        if self.order:
            steps += [("customer", self.customer), ("order", self.place_order)]
        try:
            return all(self.step(name, check) for name, check in steps)
        finally:
            if "order_id" in self.state:
                self.step("cleanup: cancel order", self.cancel_order)
            if "customer_id" in self.state and self.staff is not None:
                self.step("cleanup: deactivate customer", self.deactivate_customer)

    def _expect(self, answer: httpx.Response, status: int, what: str) -> Any:
        if answer.status_code != status:
            body = answer.text[:300].replace("\n", " ")
            raise StepFailed(f"{what}: expected {status}, got {answer.status_code}: {body}")
        try:
            return answer.json()
        except ValueError:
            raise StepFailed(f"{what}: the body is not JSON: {answer.text[:100]!r}") from None

    def probes(self) -> str:
        for path in ("/livez", "/startupz", "/readyz"):
            self._expect(self.http.get(path), 200, f"GET {path}")
        return "live, started, ready"

    def catalog(self) -> str:
        page = self._expect(self.http.get("/v1/products", params={"limit": 100}), 200, "list")
        stocked = [p for p in page.get("items", []) if p.get("available", 0) > 0]
        if not stocked:
            raise StepFailed("no product in stock on the first page: stock one to smoke-test")
        product = self._expect(
            self.http.get(f"/v1/products/{stocked[0]['id']}"), 200, "GET a product"
        )
        if product.get("id") != stocked[0]["id"]:
            raise StepFailed(f"GET a product returned {product.get('id')}, not {stocked[0]['id']}")
        self.state["product"] = product
        return f"{len(page['items'])} products listed, {product['sku']} in stock"

    def customer(self) -> str:
        email = f"smoke-{uuid.uuid4().hex[:12]}@example.com"
        body = {"email": email, "password": SMOKE_PASSWORD, "name": "Smoke Test"}
        created = self._expect(self.http.post("/v1/customers", json=body), 201, "register")
        self.state["customer_id"] = created["id"]
        login = {"email": email, "password": SMOKE_PASSWORD}
        token = self._expect(self.http.post("/v1/auth/token", json=login), 200, "log in")
        self.state["auth"] = {"Authorization": f"Bearer {token['access_token']}"}
        return email

    def place_order(self) -> str:
        auth = self.state["auth"]
        lines = [{"product_id": self.state["product"]["id"], "quantity": 1}]
        body = {"lines": lines, "shipping_address": ADDRESS}
        draft = self._expect(self.http.post("/v1/orders", json=body, headers=auth), 201, "draft")
        self.state["order_id"] = order_id = draft["id"]
        placed = self._expect(
            self.http.post(
                f"/v1/orders/{order_id}/place",
                json={"card_number": self.card},
                headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
            ),
            200,
            "place with the sandbox card",
        )
        if placed.get("status") != "placed":
            raise StepFailed(f"order is {placed.get('status')!r}, not 'placed'")
        payments = self._expect(
            self.http.get(f"/v1/orders/{order_id}/payments", headers=auth), 200, "payments"
        )
        if [p.get("status") for p in payments] != ["captured"]:
            raise StepFailed(f"payments are {[p.get('status') for p in payments]}")
        total = placed["totals"]["total"]
        return f"order {order_id} placed, {total['amount']} {total['currency']} captured"

    def cancel_order(self) -> str:
        order_id = self.state["order_id"]
        cancelled = self._expect(
            self.http.post(f"/v1/orders/{order_id}/cancel", headers=self.state["auth"]),
            200,
            "cancel",
        )
        return f"order {order_id} {cancelled.get('status')}"

    def deactivate_customer(self) -> str:
        assert self.staff is not None
        email, password = self.staff
        login = {"email": email, "password": password}
        token = self._expect(self.http.post("/v1/auth/token", json=login), 200, "staff log in")
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        customer_id = self.state["customer_id"]
        self._expect(
            self.http.post(f"/v1/customers/{customer_id}/deactivate", headers=auth),
            200,
            "deactivate",
        )
        return f"customer {customer_id} deactivated"


def run_smoke(
    base_url: str,
    *,
    out: TextIO,
    timeout: float = 10.0,
    card: str = SANDBOX_SUCCESS_CARD,
    staff: tuple[str, str] | None = None,
    order: bool = True,
) -> bool:
    """Run the smoke test and print its report; whether every step passed."""
    print(f"smoke test of {base_url}", file=out)
    with httpx.Client(base_url=base_url, timeout=timeout) as http:
        smoke = Smoke(http, card=card, staff=staff, order=order)
        passed = smoke.run()
    for result in smoke.results:
        mark = "ok  " if result.ok else "FAIL"
        print(f"  {mark} {result.step:30} {result.millis:7.0f} ms  {result.detail}", file=out)
    print("passed" if passed else "FAILED", file=out)
    return passed and all(r.ok for r in smoke.results)
