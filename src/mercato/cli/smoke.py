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
from mercato_client import AuthenticatedClient, Client
from mercato_client.api.catalog import list_products, read_product
from mercato_client.api.customers import deactivate, issue_token, register
from mercato_client.api.health import livez, readyz, startupz
from mercato_client.api.orders import cancel_order, create_order, list_payments, place_order
from mercato_client.models import (
    AddressModel,
    CancelOrder,
    CustomerCreate,
    CustomerRead,
    LineCreate,
    OrderCreate,
    OrderRead,
    PlaceOrderType0,
    ProductPage,
    ProductRead,
    ProductStaffRead,
    TokenCreate,
    TokenRead,
)
from mercato_client.types import Response

SANDBOX_SUCCESS_CARD = "4242 4242 4242 4242"
SMOKE_PASSWORD = "smoke-test-password-0123"  # a throw-away account's password
ADDRESS = AddressModel(
    street="Unter den Linden 1", city="Berlin", postal_code="10117", country="DE"
)


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
    """One run against one base URL, through the client generated from the OpenAPI document
    (clients/python): if the document and the server disagree, the smoke test says so."""

    client: Client
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

    def _signed_in(self, token: str) -> AuthenticatedClient:
        return AuthenticatedClient(
            base_url=self.client._base_url,
            timeout=self.client._timeout,
            token=token,
        )

    @staticmethod
    def _expect(
        answer: Response[Any], status: int, what: str, kind: type | tuple[type, ...]
    ) -> Any:
        """The parsed body of an answer with this status, of the model the document names."""
        if answer.status_code != status:
            body = answer.content[:300].decode("utf-8", "replace").replace("\n", " ")
            raise StepFailed(f"{what}: expected {status}, got {int(answer.status_code)}: {body}")
        if not isinstance(answer.parsed, kind):
            raise StepFailed(f"{what}: not the answer documented: {answer.content[:100]!r}")
        return answer.parsed

    def probes(self) -> str:
        for probe, path in ((livez, "/livez"), (startupz, "/startupz"), (readyz, "/readyz")):
            answer = probe.sync_detailed(client=self.client)
            if answer.status_code != 200:
                raise StepFailed(f"GET {path}: expected 200, got {int(answer.status_code)}")
        return "live, started, ready"

    def catalog(self) -> str:
        answer = list_products.sync_detailed(client=self.client, limit=100)
        page = self._expect(answer, 200, "list", ProductPage)
        stocked = [p for p in page.items if p.available > 0]
        if not stocked:
            raise StepFailed("no product in stock on the first page: stock one to smoke-test")
        one = read_product.sync_detailed(stocked[0].id, client=self.client)
        product = self._expect(one, 200, "GET a product", (ProductRead, ProductStaffRead))
        if product.id != stocked[0].id:
            raise StepFailed(f"GET a product returned {product.id}, not {stocked[0].id}")
        self.state["product"] = product
        return f"{len(page.items)} products listed, {product.sku} in stock"

    def customer(self) -> str:
        email = f"smoke-{uuid.uuid4().hex[:12]}@example.com"
        body = CustomerCreate(email=email, password=SMOKE_PASSWORD, name="Smoke Test")
        answer = register.sync_detailed(client=self.client, body=body)
        created = self._expect(answer, 201, "register", CustomerRead)
        self.state["customer_id"] = created.id
        login = TokenCreate(email=email, password=SMOKE_PASSWORD)
        issued = issue_token.sync_detailed(client=self.client, body=login)
        token = self._expect(issued, 200, "log in", TokenRead)
        self.state["customer"] = self._signed_in(token.access_token)
        return email

    def place_order(self) -> str:
        customer: AuthenticatedClient = self.state["customer"]
        lines = [LineCreate(product_id=self.state["product"].id, quantity=1)]
        body = OrderCreate(lines=lines, shipping_address=ADDRESS)
        answer = create_order.sync_detailed(client=customer, body=body)
        draft = self._expect(answer, 201, "draft", OrderRead)
        self.state["order_id"] = order_id = draft.id
        answer = place_order.sync_detailed(
            order_id,
            client=customer,
            body=PlaceOrderType0(card_number=self.card),
            idempotency_key=uuid.uuid4().hex,
        )
        placed = self._expect(answer, 200, "place with the sandbox card", OrderRead)
        if placed.status != "placed":
            raise StepFailed(f"order is {placed.status!r}, not 'placed'")
        paid = list_payments.sync_detailed(order_id, client=customer)
        payments = self._expect(paid, 200, "payments", list)
        if [p.status for p in payments] != ["captured"]:
            raise StepFailed(f"payments are {[p.status for p in payments]}")
        total = placed.totals.total
        return f"order {order_id} placed, {total.amount} {total.currency} captured"

    def cancel_order(self) -> str:
        order_id = self.state["order_id"]
        reason = CancelOrder(reason="smoke test")
        answer = cancel_order.sync_detailed(order_id, client=self.state["customer"], body=reason)
        cancelled = self._expect(answer, 200, "cancel", OrderRead)
        return f"order {order_id} {cancelled.status}"

    def deactivate_customer(self) -> str:
        assert self.staff is not None
        email, password = self.staff
        login = TokenCreate(email=email, password=password)
        issued = issue_token.sync_detailed(client=self.client, body=login)
        token = self._expect(issued, 200, "staff log in", TokenRead)
        customer_id = self.state["customer_id"]
        staff = self._signed_in(token.access_token)
        answer = deactivate.sync_detailed(customer_id, client=staff)
        self._expect(answer, 200, "deactivate", CustomerRead)
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
    with Client(base_url=base_url, timeout=httpx.Timeout(timeout)) as client:
        smoke = Smoke(client, card=card, staff=staff, order=order)
        passed = smoke.run()
    for result in smoke.results:
        mark = "ok  " if result.ok else "FAIL"
        print(f"  {mark} {result.step:30} {result.millis:7.0f} ms  {result.detail}", file=out)
    print("passed" if passed else "FAILED", file=out)
    return passed and all(r.ok for r in smoke.results)
