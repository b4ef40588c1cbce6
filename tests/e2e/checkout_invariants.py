"""mercato's promises about placing, paying and what the API shows, checked after a workload.

Like ``tests/e2e/invariants.py``, each ``check_*`` returns the violations it found, one line
each, naming the order that broke the promise.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import httpx

from tests.e2e.invariants import PAID, TOTALS, Facts
from tests.e2e.ledger import Ledger, Shop, line_quantities, not_yet

# -- placing and paying ------------------------------------------------------------------------


def _priced_as_answered(where: str, answer: dict[str, Any]) -> list[str]:
    """An order as answered costs what its answered lines cost."""
    totals = {k: answer["totals"][k]["amount"] for k in TOTALS}
    lines = sum(ln["unit_price"]["amount"] * ln["quantity"] for ln in answer["lines"])
    parts = totals["subtotal"] - totals["discount"] + totals["shipping"] + totals["tax"]
    if totals["subtotal"] == lines and totals["total"] == parts:
        return []
    return [
        f"{where}: placing answered lines {line_quantities(answer)} worth {lines} "
        f"with totals {totals}"
    ]


def _placement(order_id: str, answers: list[dict[str, Any]], facts: Facts) -> list[str]:
    first = answers[0]
    row = facts.orders[order_id]
    where = f"order {order_id} ({row['status']})"
    found = []
    if any(a["version"] != first["version"] or a["lines"] != first["lines"] for a in answers):
        found.append(f"{where}: placed more than once: {[a['version'] for a in answers]}")
    found += _priced_as_answered(where, first)
    if first["status"] != "placed" or first["payment_in_progress"]:
        found.append(f"{where}: placing answered 200 with status {first['status']}")
    if row["status"] not in PAID | {"cancelled"}:
        found.append(f"{where}: placing answered 200 (version {first['version']})")
    if line_quantities(first) != facts.quantities(order_id):
        found.append(
            f"{where}: placed with lines {line_quantities(first)}, now {facts.quantities(order_id)}"
        )
    charged = [
        p for p in facts.payments.get(order_id, []) if p["status"] in ("captured", "refunded")
    ]
    total = first["totals"]["total"]["amount"]
    if [int(p["amount"]) for p in charged] != [total]:
        found.append(f"{where}: placed for {total}, charged {[int(p['amount']) for p in charged]}")
    return found


def check_placements(facts: Facts, ledger: Ledger) -> list[str]:
    """Each order is placed at most once, as answered, and every paid order was answered 200."""
    found = []
    for order_id, answers in ledger.placed.items():
        found += _placement(order_id, answers, facts)
    for order_id, row in facts.orders.items():
        if row["status"] in PAID and order_id not in ledger.placed:
            found.append(f"order {order_id} is {row['status']}, no placing was answered 200")
    return found


def _payments_of(order_id: str, row: asyncpg.Record, payments: list[asyncpg.Record]) -> list[str]:
    where = f"order {order_id} ({row['status']}, total {row['total']})"
    by_status = Counter(p["status"] for p in payments)
    live = by_status["captured"] + by_status["refunded"]
    found = []
    if by_status["pending"]:
        found.append(f"{where}: a payment is still pending")
    if live > 1:
        found.append(
            f"{where}: charged {live} times: {[(p['status'], p['amount']) for p in payments]}"
        )
    if row["status"] in PAID:
        captured = [int(p["amount"]) for p in payments if p["status"] == "captured"]
        if captured != [int(row["total"])]:
            found.append(f"{where}: captured payments {captured}")
    elif by_status["captured"]:
        found.append(f"{where}: holds a captured payment (cancelled paid orders are refunded)")
    if row["status"] == "draft" and live:
        found.append(f"{where}: a draft was charged")
    return found


def check_payments(facts: Facts) -> list[str]:
    """At most one charge per order, captured for paid orders, refunded for cancelled ones."""
    found = []
    for order_id, row in facts.orders.items():
        found += _payments_of(order_id, row, facts.payments.get(order_id, []))
    every = [p for ps in facts.payments.values() for p in ps]
    captured = sum(int(p["amount"]) for p in every if p["status"] in ("captured", "refunded"))
    refunded = sum(int(p["amount"]) for p in every if p["status"] == "refunded")
    paid = sum(int(r["total"]) for r in facts.orders.values() if r["status"] in PAID)
    if captured - refunded != paid:
        found.append(f"captured {captured} - refunded {refunded} != paid orders' totals {paid}")
    return found


def _comparable(answer: httpx.Response) -> tuple[int, Any]:
    body = answer.json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    return answer.status_code, body


def check_idempotent_repeats(ledger: Ledger) -> list[str]:
    """Requests repeated with one Idempotency-Key get one final answer; a "not yet" answer
    (5xx, 408, 425, 429 or one with Retry-After) is never replayed to a repeat."""
    found = []
    for request, answers in ledger.keyed:
        final = [_comparable(a) for a in answers if not not_yet(a)]
        if any(f != final[0] for f in final):
            found.append(
                f"{request}: different answers {[a.status_code for a in answers]}: {final}"
            )
        replayed = [a for a in answers if not_yet(a) and a.headers.get("idempotent-replayed")]
        if replayed:
            found.append(f"{request}: a not-yet answer was replayed: {replayed[0].text}")
    return found


# -- the API's view ----------------------------------------------------------------------------


def _order_view(row: asyncpg.Record, lines: list[asyncpg.Record]) -> dict[str, Any]:
    return {
        "status": row["status"],
        "version": row["version"],
        "lines": {ln["product_id"]: (ln["quantity"], ln["unit_price"]) for ln in lines},
        "totals": {k: int(row[k]) for k in TOTALS},
    }


def _answered_view(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": body["status"],
        "version": body["version"],
        "lines": {
            ln["product_id"]: (ln["quantity"], ln["unit_price"]["amount"]) for ln in body["lines"]
        },
        "totals": {k: body["totals"][k]["amount"] for k in TOTALS},
    }


async def check_api_views(clients: list[httpx.AsyncClient], shop: Shop, facts: Facts) -> list[str]:
    """Every server shows every order and product as the database holds it."""
    found: list[str] = []
    limit = asyncio.Semaphore(16)

    async def compare(
        client: httpx.AsyncClient, path: str, expected: dict[str, Any], view: Any
    ) -> None:
        async with limit:
            got = await client.get(path, headers=shop.staff)
        if got.status_code != 200 or view(got.json()) != expected:
            found.append(f"{client.base_url}{path} shows {got.text[:400]}, the database {expected}")

    checks = [
        compare(
            client,
            f"/v1/orders/{order_id}",
            _order_view(row, facts.lines.get(order_id, [])),
            _answered_view,
        )
        for client in clients
        for order_id, row in facts.orders.items()
    ]
    stock = ("available", "reserved", "sold")
    checks += [
        compare(
            client,
            f"/v1/products/{product_id}",
            {k: int(row[k]) for k in stock},
            lambda body: {k: body[k] for k in stock},
        )
        for client in clients
        for product_id, row in facts.products.items()
    ]
    await asyncio.gather(*checks)
    return found
