"""What a workload was told: its participants, the edits acknowledged, every answer's status.

The workload (``tests/e2e/workload.py``) writes it; the invariants read it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2e.helpers import PROBLEM_JSON


@dataclass(frozen=True)
class Customer:
    id: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Shop:
    """Who takes part in one run and what they trade: everything fresh, so runs never mix."""

    staff: dict[str, str]
    deputy: Customer  # a second staff account, deactivated halfway through
    customers: list[Customer]  # the last one is deactivated halfway through
    products: list[str]
    opening: dict[str, int]


@dataclass(frozen=True)
class Edit:
    """An edit of a draft that was answered 200, with the version and lines it answered."""

    order_id: str
    version: int
    kind: str  # add | set | remove | address | discount
    product_id: str | None
    quantity: int | None
    value: str | None  # the discount code (None: removed) or the shipping country
    lines: dict[str, int]
    request: str


@dataclass
class Ledger:
    """Every answer the workload got, as far as the invariants need them."""

    statuses: Counter[int] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)  # what revoked tokens still did
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    edits: list[Edit] = field(default_factory=list)
    placed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    keyed: list[tuple[str, list[httpx.Response]]] = field(default_factory=list)
    adjusted: Counter[str] = field(default_factory=Counter)
    slowest: tuple[float, str] = (0.0, "")  # seconds, request

    def note(self, response: httpx.Response) -> None:
        """Count the answer and record it if it breaks the HTTP contract."""
        status = response.status_code
        self.statuses[status] += 1
        where = f"{response.request.method} {response.request.url.path} answered {status}"
        self.slowest = max(self.slowest, (response.elapsed.total_seconds(), where))
        if status >= 500 and not (status == 503 and response.headers.get("retry-after")):
            self.violations.append(f"{where} (only 503 with Retry-After): {response.text[:300]}")
        elif 400 <= status < 500 and not is_problem(response):
            self.violations.append(f"{where} without a problem+json body: {response.text[:300]}")

    def expect(self, response: httpx.Response, statuses: set[int], why: str) -> None:
        """Record a violation unless the answer has one of these statuses."""
        if response.status_code not in statuses:
            self.violations.append(
                f"{why}: {response.request.method} {response.request.url.path} answered "
                f"{response.status_code}, expected {sorted(statuses)}: {response.text[:300]}"
            )


def is_problem(response: httpx.Response) -> bool:
    """An RFC 9457 body that names the status, a code and what went wrong."""
    if response.headers.get("content-type") != PROBLEM_JSON:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return bool(body.get("status") == response.status_code and body.get("code") and body["detail"])


def not_yet(answer: httpx.Response) -> bool:
    """Whether an answer means "not yet, retry" (5xx, 408, 425, 429, or one with Retry-After):
    mercato never keeps such an answer under an Idempotency-Key."""
    status = answer.status_code
    return status >= 500 or status in (408, 425, 429) or "retry-after" in answer.headers


def code_of(response: httpx.Response) -> str | None:
    """The problem code of a refusal, None for anything else."""
    if response.headers.get("content-type") != PROBLEM_JSON:
        return None
    code = response.json().get("code")
    return str(code) if code else None


def line_quantities(body: dict[str, Any]) -> dict[str, int]:
    """product id -> quantity of an order as answered."""
    return {ln["product_id"]: int(ln["quantity"]) for ln in body["lines"]}
