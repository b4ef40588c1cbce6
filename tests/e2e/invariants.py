"""mercato's promises about totals, stock and edits, checked after a workload in the database.

The database is read with plain SQL, not through mercato. Each ``check_*`` function returns
the violations it found, one line each, naming the order or product that broke the promise,
so a failing run says what broke and where.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from mercato.kernel.money import Money
from mercato.kernel.values import Address, Quantity
from mercato.orders import Order, Status
from mercato.orders.domain import OrderLine, Totals
from tests.e2e.ledger import Edit, Ledger, Shop, line_quantities

PAID = frozenset({"placed", "confirmed", "shipped", "delivered"})
TOTALS = ("subtotal", "discount", "shipping", "tax", "total")

_ORDERS = "SELECT * FROM orders_orders WHERE customer_id = ANY($1::text[])"
_LINES = "SELECT * FROM orders_lines WHERE order_id = ANY($1::text[]) ORDER BY position"
_PAYMENTS = "SELECT * FROM payments_payments WHERE order_id = ANY($1::text[]) ORDER BY id"
_PRODUCTS = "SELECT * FROM catalog_products WHERE id = ANY($1::text[])"
_ADJUSTMENTS = (
    "SELECT product_id, sum(delta) AS total FROM catalog_stock_adjustments"
    " WHERE product_id = ANY($1::text[]) GROUP BY product_id"
)
_RESERVATIONS = "SELECT * FROM catalog_reservations WHERE product_id = ANY($1::text[])"
_IN_FLIGHT = """
SELECT
  (SELECT count(*) FROM orders_orders
    WHERE customer_id = ANY($1::text[]) AND checkout_payment_id IS NOT NULL)
  + (SELECT count(*) FROM payments_payments p JOIN orders_orders o ON o.id = p.order_id
    WHERE o.customer_id = ANY($1::text[]) AND p.status = 'pending')
  + (SELECT count(*) FROM platform_outbox e JOIN orders_orders o ON o.id = e.aggregate_id
    WHERE o.customer_id = ANY($1::text[]) AND e.published_at IS NULL)
"""


@dataclass
class Facts:
    """What the database holds about one run's customers, orders and products."""

    orders: dict[str, asyncpg.Record]
    lines: dict[str, list[asyncpg.Record]]
    payments: dict[str, list[asyncpg.Record]]
    products: dict[str, asyncpg.Record]
    adjustments: dict[str, int]
    reservations: list[asyncpg.Record]

    def quantities(self, order_id: str) -> dict[str, int]:
        return {ln["product_id"]: int(ln["quantity"]) for ln in self.lines.get(order_id, [])}


async def wait_until_settled(conn: asyncpg.Connection, shop: Shop, *, within: float) -> int:
    """Wait until no checkout, pending payment or unpublished event of the run is left.

    Returns how many were still in flight when ``within`` seconds ran out (0: all settled).
    """
    customers = [c.id for c in shop.customers]
    deadline = asyncio.get_running_loop().time() + within
    while True:
        busy = int(await conn.fetchval(_IN_FLIGHT, customers))
        if busy == 0 or asyncio.get_running_loop().time() > deadline:
            return busy
        await asyncio.sleep(0.2)


async def read_facts(conn: asyncpg.Connection, shop: Shop) -> Facts:
    orders = {r["id"]: r for r in await conn.fetch(_ORDERS, [c.id for c in shop.customers])}
    ids = list(orders)
    lines: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in await conn.fetch(_LINES, ids):
        lines[row["order_id"]].append(row)
    payments: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in await conn.fetch(_PAYMENTS, ids):
        payments[row["order_id"]].append(row)
    products = {r["id"]: r for r in await conn.fetch(_PRODUCTS, shop.products)}
    sums = {r["product_id"]: int(r["total"]) for r in await conn.fetch(_ADJUSTMENTS, shop.products)}
    reservations = list(await conn.fetch(_RESERVATIONS, shop.products))
    return Facts(orders, lines, payments, products, sums, reservations)


# -- totals ------------------------------------------------------------------------------------


def repriced(row: asyncpg.Record, lines: list[asyncpg.Record], rules: Any) -> Totals:
    """What the stored order costs when its stored lines are priced again."""
    currency = row["currency"]
    address = row["shipping_address"]
    order = Order(
        id=row["id"],
        customer_id=row["customer_id"],
        currency=currency,
        status=Status.DRAFT,  # priced as the draft it was: only drafts are priced
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        totals=Totals.zero(currency),  # what reprice replaces
        lines={
            ln["product_id"]: OrderLine(
                ln["product_id"],
                ln["sku"],
                ln["name"],
                Money(int(ln["unit_price"]), currency),
                Quantity(int(ln["quantity"])),
                int(ln["weight_grams"]),
            )
            for ln in lines
        },
        shipping_address=Address(**json.loads(address)) if address else None,
        discount_percent=int(row["discount_percent"]),
    )
    order.reprice(*rules)
    return order.totals


def check_totals(facts: Facts, rules: Any) -> list[str]:
    """Every order's stored totals are its stored lines priced at their unit prices."""
    found = []
    for order_id, row in facts.orders.items():
        lines = facts.lines.get(order_id, [])
        stored = {k: int(row[k]) for k in TOTALS}
        subtotal = sum(int(ln["unit_price"]) * int(ln["quantity"]) for ln in lines)
        expected = repriced(row, lines, rules)
        wanted = {k: getattr(expected, k).amount for k in TOTALS}
        where = f"order {order_id} ({row['status']}, lines {facts.quantities(order_id)})"
        if stored["subtotal"] != subtotal:
            found.append(f"{where}: subtotal {stored['subtotal']}, its lines add up to {subtotal}")
        arithmetic = stored["subtotal"] - stored["discount"] + stored["shipping"] + stored["tax"]
        if stored["total"] != arithmetic:
            found.append(f"{where}: total {stored['total']} is not the sum of its parts {stored}")
        if stored != wanted:
            found.append(f"{where}: stored totals {stored}, its lines price to {wanted}")
    return found


def check_unit_prices(facts: Facts) -> list[str]:
    """Prices never change during a run, so every line carries its product's price."""
    return [
        f"order {order_id}: line {ln['product_id']} at {ln['unit_price']}, the product costs "
        f"{facts.products[ln['product_id']]['price_amount']}"
        for order_id, lines in facts.lines.items()
        for ln in lines
        if ln["unit_price"] != facts.products[ln["product_id"]]["price_amount"]
    ]


# -- stock -------------------------------------------------------------------------------------


def _units(facts: Facts, order_ids: Iterable[str]) -> Counter[str]:
    units: Counter[str] = Counter()
    for order_id in order_ids:
        units.update(facts.quantities(order_id))
    return units


def check_stock(facts: Facts, shop: Shop, ledger: Ledger) -> list[str]:
    """Per product: counters add up, sold units are in paid orders, nothing held at the end."""
    paid = _units(facts, (o for o, r in facts.orders.items() if r["status"] in PAID))
    held = _units(facts, (o for o, r in facts.orders.items() if r["checkout_payment_id"]))
    found = []
    for product_id in shop.products:
        row = facts.products[product_id]
        available, reserved, sold = (int(row[k]) for k in ("available", "reserved", "sold"))
        where = f"product {product_id} (available {available}, reserved {reserved}, sold {sold})"
        adjusted = facts.adjustments.get(product_id, 0)
        acknowledged = shop.opening[product_id] + ledger.adjusted[product_id]
        if min(available, reserved, sold) < 0:
            found.append(f"{where}: a counter is negative")
        if sold != paid[product_id]:
            found.append(f"{where}: paid orders hold {paid[product_id]} units, {sold} are sold")
        if reserved != held[product_id]:
            found.append(f"{where}: orders in checkout hold {held[product_id]} units")
        if adjusted != available + reserved + sold:
            found.append(f"{where}: its adjustments add up to {adjusted}")
        if adjusted != acknowledged:
            found.append(f"{where}: stock adjustments {adjusted}, acknowledged {acknowledged}")
    return found


def check_reservations(facts: Facts) -> list[str]:
    """Per order: what it committed (or returned) is exactly what its lines say."""
    by_order: dict[str, Counter[tuple[str, str]]] = defaultdict(Counter)
    for r in facts.reservations:
        by_order[r["order_id"]][(r["state"], r["product_id"])] += int(r["quantity"])
    found = []
    for order_id, row in facts.orders.items():
        held = by_order.get(order_id, Counter())
        state = {"cancelled": "returned"}.get(row["status"], "committed")
        kept = {p: q for (s, p), q in held.items() if s == state}
        active = {p: q for (s, p), q in held.items() if s == "active"}
        lines = facts.quantities(order_id)
        if active:
            found.append(f"order {order_id} ({row['status']}): still holds {active}")
        if row["status"] == "cancelled" and any(s == "committed" for s, _ in held):
            found.append(f"order {order_id} (cancelled): its sold stock was never given back")
        paid_once = row["status"] in PAID or (row["status"] == "cancelled" and kept)
        if paid_once and kept != lines:
            found.append(
                f"order {order_id} ({row['status']}): its lines are {lines}, "
                f"but the stock it took ({state}) is {kept}"
            )
    return found


# -- acknowledged edits ------------------------------------------------------------------------


def _apply(state: dict[str, int], edit: Edit) -> str | None:
    """Apply an acknowledged edit to replayed lines; why it cannot apply, if it cannot."""
    product = edit.product_id or ""
    if edit.kind == "add":
        state[product] = state.get(product, 0) + (edit.quantity or 0)
    elif edit.kind in ("set", "remove") and product not in state:
        return f"{edit.request} was acknowledged for a line the earlier edits had removed"
    elif edit.kind == "set":
        state[product] = edit.quantity or 0
    elif edit.kind == "remove":
        del state[product]
    return None


def replay(
    order_id: str, created: dict[str, Any], edits: list[Edit]
) -> tuple[dict[str, int], list[str]]:
    """The lines the acknowledged edits, in version order, give; and where answers disagreed."""
    state = line_quantities(created)
    found = []
    versions = Counter(e.version for e in edits)
    for version, count in sorted(versions.items()):
        if count > 1:
            both = [e.request for e in edits if e.version == version]
            found.append(
                f"order {order_id}: {count} edits were acknowledged as version {version}: {both}"
            )
    for edit in edits:
        refused = _apply(state, edit)
        if refused:
            found.append(f"order {order_id}: {refused}")
        if edit.lines != state and not found:
            found.append(
                f"order {order_id}: {edit.request} answered version {edit.version} with lines "
                f"{edit.lines}, but the edits acknowledged up to it give {state}"
            )
    return state, found


def _last(edits: list[Edit], kind: str) -> Edit | None:
    return next((e for e in reversed(edits) if e.kind == kind), None)


def check_edits(facts: Facts, ledger: Ledger) -> list[str]:
    """Every edit answered 200 is in the final order unless a later acknowledged edit changed it."""
    by_order: dict[str, list[Edit]] = defaultdict(list)
    for edit in ledger.edits:
        by_order[edit.order_id].append(edit)
    found = []
    for order_id, created in ledger.created.items():
        edits = sorted(by_order.get(order_id, []), key=lambda e: e.version)
        row = facts.orders[order_id]
        expected, disagreements = replay(order_id, created, edits)
        found += disagreements
        final = facts.quantities(order_id)
        if final != expected:
            differs = {
                p: (expected.get(p), final.get(p))
                for p in expected.keys() | final.keys()
                if expected.get(p) != final.get(p)
            }
            found.append(
                f"order {order_id} ({row['status']}, version {row['version']}): lines {final}, "
                f"the acknowledged edits give {expected} (acknowledged, stored: {differs})"
            )
        discount = _last(edits, "discount")
        if discount and row["discount_code"] != discount.value:
            found.append(
                f"order {order_id}: discount {row['discount_code']}, acknowledged {discount.value}"
            )
        address = _last(edits, "address")
        country = (
            json.loads(row["shipping_address"])["country"] if row["shipping_address"] else None
        )
        if address and country != address.value:
            found.append(f"order {order_id}: ships to {country}, acknowledged {address.value}")
    return found
