"""In-memory catalog repositories: products, stock adjustments and reservations.

The rows are the real tables' rows (the store's own mapping builds them), kept in the fake unit
of work's tables, so a service test sees what a database would hold. Reserving refuses
all-or-nothing: every line is checked before any stock moves.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any

from mercato.catalog.domain import (
    Adjustment,
    OutOfStock,
    Product,
    ProductConflict,
    ProductInactive,
    ProductNotFound,
    ReservedLine,
    SkuTaken,
)
from mercato.catalog.store import ProductRepository, StockRepository
from mercato.catalog.store.tables import line_from_row, product_from_row, product_row, product_view
from mercato.kernel.ids import new_id
from mercato.platform.uow import UnitOfWork
from tests.fakes import fake_for, tables_of

Rows = dict[str, dict[str, Any]]


def product_rows(uow: UnitOfWork) -> Rows:
    """The ``catalog_products`` rows by id."""
    rows: Rows = tables_of(uow).setdefault("catalog_products", {})
    return rows


def reservation_rows(uow: UnitOfWork) -> list[dict[str, Any]]:
    """The ``catalog_reservations`` rows, in insertion order."""
    rows: list[dict[str, Any]] = tables_of(uow).setdefault("catalog_reservations", [])
    return rows


def _found(uow: UnitOfWork, product_id: str) -> dict[str, Any]:
    row = product_rows(uow).get(product_id)
    if row is None:
        raise ProductNotFound(product_id)
    return row


@fake_for(ProductRepository)
class FakeProductRepository(ProductRepository):
    __slots__ = ("_uow",)  # its rows are its unit of work's tables

    async def get(self, product_id: str, *, lock: bool = False) -> Product:
        return self._track(product_from_row(_found(self._uow, product_id)))

    async def add(self, product: Product) -> None:
        rows = product_rows(self._uow)
        if any(row["sku"] == product.sku for row in rows.values()):
            raise SkuTaken(product.sku)
        rows[product.id] = product_row(product)
        self._track_new(product)

    async def exists(self, product_id: str) -> bool:
        return product_id in product_rows(self._uow)

    async def view(self, product_id: str, *, staff: bool) -> dict[str, object] | None:
        row = product_rows(self._uow).get(product_id)
        if row is None or not (staff or row["active"]):
            return None
        return product_view(row, staff=staff)

    async def page(
        self, *, text: str | None, after: str | None, limit: int, include_inactive: bool
    ) -> list[Product]:
        needle = (text or "").lower()
        found = [
            row
            for key, row in sorted(product_rows(self._uow).items())
            if key > (after or "")
            and (row["active"] or include_inactive)
            and (needle in row["name"].lower() or needle in row["sku"].lower())
        ]
        return [self._track(product_from_row(row)) for row in found[:limit]]

    async def describe(self, product_id: str) -> ReservedLine:
        row = _found(self._uow, product_id)
        if not row["active"]:
            raise ProductInactive(product_id)
        return line_from_row(row, quantity=0)

    async def _write(self, aggregate: Product, *, expected: Hashable) -> bool:
        row = product_rows(self._uow)[aggregate.id]
        if row["version"] != expected:
            return False
        counters = {key: row[key] for key in ("available", "reserved", "sold")}
        row.update(product_row(aggregate), **counters)
        return True

    async def _conflict(self, aggregate: Product) -> Exception:
        current = product_rows(self._uow)[aggregate.id]["version"]
        return ProductConflict(aggregate.id, current_version=current)


@fake_for(StockRepository)
class FakeStockRepository(StockRepository):
    __slots__ = ("_uow",)  # its rows are its unit of work's tables

    async def adjust(
        self, product_id: str, *, delta: int, reason: str, actor_id: str, now: datetime
    ) -> int:
        row = _found(self._uow, product_id)
        if row["available"] + delta < 0:
            raise OutOfStock(product_id, requested=-delta, available=row["available"])
        row["available"] += delta
        trail = tables_of(self._uow).setdefault("catalog_stock_adjustments", [])
        trail.append(
            Adjustment(new_id(), product_id, delta, reason, actor_id, row["available"], now)
        )
        return int(row["available"])

    async def adjustments(
        self, product_id: str, *, after: str | None, limit: int
    ) -> list[Adjustment]:
        trail = tables_of(self._uow).get("catalog_stock_adjustments", [])
        mine = [a for a in trail if a.product_id == product_id and a.id > (after or "")]
        return sorted(mine, key=lambda a: a.id)[:limit]

    async def reserve(
        self, order_id: str, quantities: dict[str, int], *, expires_at: datetime, now: datetime
    ) -> list[ReservedLine]:
        for product_id in sorted(quantities):  # every line is checked before any stock moves
            self._refuse_unless_free(product_id, quantities[product_id])
        lines = []
        for product_id in sorted(quantities):
            qty = quantities[product_id]
            row = product_rows(self._uow)[product_id]
            row["available"] -= qty
            row["reserved"] += qty
            reservation_rows(self._uow).append(
                {
                    "order_id": order_id,
                    "product_id": product_id,
                    "quantity": qty,
                    "state": "active",
                    "expires_at": expires_at,
                }
            )
            lines.append(line_from_row(row, quantity=qty))
        return lines

    def _refuse_unless_free(self, product_id: str, qty: int) -> None:
        row = _found(self._uow, product_id)
        if not row["active"]:
            raise ProductInactive(product_id)
        if row["available"] < qty:
            raise OutOfStock(product_id, requested=qty, available=row["available"])

    async def _move(
        self, order_id: str, from_state: str, to_state: str, counters: object
    ) -> list[tuple[str, int]]:
        take, give = _COUNTERS[to_state]
        moved = []
        for reservation in reservation_rows(self._uow):
            if reservation["order_id"] == order_id and reservation["state"] == from_state:
                reservation["state"] = to_state
                row = product_rows(self._uow)[reservation["product_id"]]
                row[take] -= reservation["quantity"]
                row[give] += reservation["quantity"]
                moved.append((reservation["product_id"], reservation["quantity"]))
        return sorted(moved)

    async def expired_orders(self, *, now: datetime, limit: int) -> list[str]:
        first_expiry: dict[str, datetime] = {}
        for r in reservation_rows(self._uow):
            if r["state"] == "active" and r["expires_at"] < now:
                first_expiry[r["order_id"]] = min(
                    r["expires_at"], first_expiry.get(r["order_id"], now)
                )
        return sorted(first_expiry, key=first_expiry.__getitem__)[:limit]


# which counter a reservation's move takes units from, and which it gives them to
_COUNTERS = {
    "committed": ("reserved", "sold"),
    "released": ("reserved", "available"),
    "returned": ("sold", "available"),
}
