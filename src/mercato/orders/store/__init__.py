"""Order persistence: ``orders_orders`` and ``orders_lines``, mapped explicitly to the aggregate.

:class:`OrderRepository` is the orders module's repository on the unit of work. Saving checks
the version the order was loaded at, so two writers can never both win, and rewrites the lines
only when they differ from what was loaded. Listing fetches a page of orders joined with their
lines in one statement (no N+1).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, cast

import orjson
import sqlalchemy as sa

from mercato.kernel.money import Money
from mercato.kernel.values import Address, Quantity
from mercato.orders.domain import Order, OrderConflict, OrderLine, Status, Totals
from mercato.orders.store.checkout import _LOCK_WITH_CUSTOMER, begin_at_once
from mercato.payments import Payment
from mercato.platform.db import Row, metadata, rows_by, sql
from mercato.platform.uow import TrackingRepository, UnitOfWork

orders = sa.Table(
    "orders_orders",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("customer_id", sa.String(36), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("subtotal", sa.BigInteger(), nullable=False),
    sa.Column("discount", sa.BigInteger(), nullable=False),
    sa.Column("shipping", sa.BigInteger(), nullable=False),
    sa.Column("tax", sa.BigInteger(), nullable=False),
    sa.Column("total", sa.BigInteger(), nullable=False),
    sa.Column("discount_code", sa.String(40), nullable=True),
    sa.Column("discount_percent", sa.Integer(), nullable=False),
    sa.Column("shipping_address", sa.Text(), nullable=True),
    sa.Column("billing_address", sa.Text(), nullable=True),
    sa.Column("checkout_payment_id", sa.String(36), nullable=True),
    sa.Column("cancel_reason", sa.String(500), nullable=True),
    sa.Column("tracking_code", sa.String(100), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.CheckConstraint("total >= 0", name="total_not_negative"),
    sa.Index("ix_orders_orders_customer", "customer_id", "id"),
    sa.Index("ix_orders_orders_status", "status", "id"),
)

lines = sa.Table(
    "orders_lines",
    metadata,
    sa.Column(
        "order_id",
        sa.String(36),
        sa.ForeignKey("orders_orders.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("product_id", sa.String(36), primary_key=True),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("unit_price", sa.BigInteger(), nullable=False),
    sa.Column("quantity", sa.Integer(), nullable=False),
    sa.Column("weight_grams", sa.Integer(), nullable=False),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
)

_o = orders.c
_l = lines.c
_bind = sa.bindparam
_HEADER = [c.name for c in orders.c]

# An order and its lines in one round trip (one snapshot): one row per line, or one row with
# NULL line columns for an order without lines. For reads that change nothing.
_LINE_COLUMNS = [c for c in lines.c if c.name != "order_id"]
_GET = sql(
    sa.select(orders, *_LINE_COLUMNS)
    .select_from(orders.outerjoin(lines, _l.order_id == _o.id))
    .where(_o.id == _bind("id"))
    .order_by(_l.position)
)
# For a change: lock the order row and read its lines. A statement that waited for the lock
# sees the order row as the lock holder committed it but every other row as it was when the
# statement began (READ COMMITTED), so lines read in the locking statement could predate the
# holder's edit and be written back over it. The statement therefore also returns the order's
# version as its own snapshot saw it (``seen``, an unlocked read of the same row): every change
# to an order's lines commits together with a higher version, so when the locked row's version
# equals the snapshot's, no change committed in between and the lines read are current; when it
# differs (the statement waited for a change), the lines are read again now that the lock is
# held. One round trip in the common case, two after a wait.
_seen = orders.alias("seen")
_LOCK = sql(
    sa.select(orders, _seen.c.version.label("seen_version"), *_LINE_COLUMNS)
    .select_from(orders.join(_seen, _seen.c.id == _o.id).outerjoin(lines, _l.order_id == _o.id))
    .where(_o.id == _bind("id"))
    .order_by(_l.position)
    .with_for_update(of=orders)
)
_LINES = sql(sa.select(lines).where(_l.order_id == _bind("id")).order_by(_l.position))
_INSERT = sql(sa.insert(orders).values({n: _bind(n) for n in _HEADER}))
_UPDATE = sql(
    sa.update(orders)
    .where(_o.id == _bind("id"), _o.version == _bind("expected"))
    .values({n: _bind(n) for n in _HEADER if n not in ("id", "customer_id", "created_at")})
)
_VERSION = sql(sa.select(_o.version).where(_o.id == _bind("id")))
_HEAD = sql(sa.select(_o.customer_id, _o.status, _o.version).where(_o.id == _bind("id")))
_DELETE_LINES = sql(sa.delete(lines).where(_l.order_id == _bind("id")))
_INSERT_LINE = sql(sa.insert(lines).values({c.name: _bind(c.name) for c in lines.c}))

_page_filter = sa.and_(
    _o.id < _bind("before"),
    sa.or_(_o.customer_id == _bind("customer_id"), _bind("any_customer", type_=sa.Boolean)),
    sa.or_(_o.status == _bind("status"), _bind("any_status", type_=sa.Boolean)),
)
# A page of orders with their lines in one statement, so in one snapshot: an order's totals and
# its lines always come from the same committed state.
_page = (
    sa.select(orders).where(_page_filter).order_by(_o.id.desc()).limit(_bind("limit")).subquery()
)
_PAGE = sql(
    sa.select(_page, *(c for c in lines.c if c.name != "order_id"))
    .select_from(_page.outerjoin(lines, _l.order_id == _page.c.id))
    .order_by(_page.c.id.desc(), _l.position)
)


def _address(raw: str | None) -> Address | None:
    return None if raw is None else Address(**orjson.loads(raw))


def _dump_address(address: Address | None) -> str | None:
    return None if address is None else orjson.dumps(address.as_dict()).decode()


def _line(row: Row, currency: str) -> OrderLine:
    return OrderLine(
        product_id=row["product_id"],
        sku=row["sku"],
        name=row["name"],
        unit_price=Money(row["unit_price"], currency),
        quantity=Quantity(row["quantity"]),
        weight_grams=row["weight_grams"],
    )


def _order(row: Row, line_rows: list[Row]) -> Order:
    cur = row["currency"]
    return Order(
        id=row["id"],
        customer_id=row["customer_id"],
        currency=cur,
        status=Status(row["status"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        lines={r["product_id"]: _line(r, cur) for r in line_rows},
        shipping_address=_address(row["shipping_address"]),
        billing_address=_address(row["billing_address"]),
        discount_code=row["discount_code"],
        discount_percent=row["discount_percent"],
        totals=Totals(
            *(Money(row[k], cur) for k in ("subtotal", "discount", "shipping", "tax", "total"))
        ),
        placed_at=row["placed_at"],
        checkout_payment_id=row["checkout_payment_id"],
        cancel_reason=row["cancel_reason"],
        tracking_code=row["tracking_code"],
        version=row["version"],
    )


def _header(order: Order) -> dict[str, Any]:
    totals = order.totals
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "status": order.status.value,
        "currency": order.currency,
        "subtotal": totals.subtotal.amount,
        "discount": totals.discount.amount,
        "shipping": totals.shipping.amount,
        "tax": totals.tax.amount,
        "total": totals.total.amount,
        "discount_code": order.discount_code,
        "discount_percent": order.discount_percent,
        "shipping_address": _dump_address(order.shipping_address),
        "billing_address": _dump_address(order.billing_address),
        "checkout_payment_id": order.checkout_payment_id,
        "cancel_reason": order.cancel_reason,
        "tracking_code": order.tracking_code,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "placed_at": order.placed_at,
        "version": order.version,
    }


def _lines_of(rows: list[Row]) -> list[Row]:
    """The line rows of an order read joined with its lines (none: one row of NULLs)."""
    return rows if rows[0]["product_id"] is not None else []


def _line_rows(order: Order) -> list[dict[str, Any]]:
    return [
        {
            "order_id": order.id,
            "product_id": ln.product_id,
            "position": i,
            "sku": ln.sku,
            "name": ln.name,
            "unit_price": ln.unit_price.amount,
            "quantity": ln.quantity.value,
            "weight_grams": ln.weight_grams,
        }
        for i, ln in enumerate(order.lines.values())
    ]


@dataclass(frozen=True, slots=True)
class OrderHead:
    """What following an order needs: who may see it, where it stands, its version."""

    id: str
    customer_id: str
    status: Status
    version: int


class OrderRepository(TrackingRepository[Order]):
    """Orders on the unit of work: loads, inserts and version-guarded saves.

    Besides the version each order was loaded with, it remembers the order's lines as loaded,
    so a save rewrites ``orders_lines`` only when they changed.
    """

    __slots__ = ("_lines_seen",)

    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow)
        self._lines_seen: dict[int, list[OrderLine]] = {}

    async def get(self, order_id: str, *, lock: bool = False) -> Order | None:
        """The order with its lines, or None.

        ``lock`` row-locks the order until commit and returns the lines as they are once the
        lock is held (see ``_LOCK``), so what a change starts from includes every change
        committed before it.
        """
        if lock:
            rows = await self.conn.fetch(_LOCK, id=order_id)
            return await self._locked(rows) if rows else None
        rows = await self.conn.fetch(_GET, id=order_id)
        return self._loaded(_order(rows[0], _lines_of(rows))) if rows else None

    async def lock_with_customer(self, order_id: str) -> tuple[Order, bool] | None:
        """PostgreSQL: the order as ``get(order_id, lock=True)`` returns it and whether its
        customer is active, the customer's row share-locked until commit (one round trip).

        None if either row is missing, and always on SQLite: the caller then asks for each on
        its own, which also tells which one is missing.
        """
        if self.conn.dialect != "postgresql":
            return None
        rows = await self.conn.fetch(_LOCK_WITH_CUSTOMER, id=order_id)
        if not rows:
            return None
        return await self._locked(rows), bool(rows[0]["customer_active"])

    async def save_with_payment(self, order: Order, payment: Payment) -> bool:
        """PostgreSQL: save an order that began its checkout and insert its pending payment in
        one statement, writing only the order columns that starting a checkout changes.

        False, with nothing written, on SQLite or when the order's lines changed too (repriced
        at checkout): the caller then records the payment and saves the order on their own.
        """
        if self.conn.dialect != "postgresql":
            return False
        if list(order.lines.values()) != self._lines_seen.get(id(order)):
            return False
        expected = cast(int, self.loaded_token(order))
        if not await begin_at_once(self.conn, order, payment, expected_version=expected):
            raise await self._conflict(order)  # never expected: the order is locked
        self._track(order)
        return True

    async def add(self, order: Order) -> None:
        """Insert a new order and its lines; its events are collected on commit."""
        await self.conn.execute(_INSERT, **_header(order))
        if order.lines:
            await self.conn.executemany(_INSERT_LINE, _line_rows(order))
        self._loaded(order)

    async def head(self, order_id: str) -> OrderHead | None:
        """An order's owner, status and version (one row, no lines), or None."""
        row = await self.conn.fetchrow(_HEAD, id=order_id)
        if row is None:
            return None
        return OrderHead(order_id, row["customer_id"], Status(row["status"]), int(row["version"]))

    async def page(
        self, *, customer_id: str | None, status: Status | None, before: str | None, limit: int
    ) -> list[Order]:
        """Newest first: up to ``limit`` orders older than ``before``, with their lines."""
        params = {
            "before": before or "~",
            "limit": limit,
            "customer_id": customer_id or "",
            "any_customer": customer_id is None,
            "status": status.value if status else "",
            "any_status": status is None,
        }
        by_order = rows_by(await self.conn.fetch(_PAGE, **params), "id")  # keeps the page's order
        return [_order(rows[0], _lines_of(rows)) for rows in by_order.values()]

    async def _locked(self, rows: list[Row]) -> Order:
        """The order of a locking read's rows (see ``_LOCK``): its lines as read, or read again
        now that the lock is held if the statement waited for a change to the order."""
        head = rows[0]
        if head["version"] == head["seen_version"]:
            return self._loaded(_order(head, _lines_of(rows)))
        return self._loaded(_order(head, await self.conn.fetch(_LINES, id=head["id"])))

    def _loaded(self, order: Order) -> Order:
        self._lines_seen[id(order)] = list(order.lines.values())
        return self._track(order)

    def _token(self, aggregate: Order) -> Hashable:
        return aggregate.version

    async def _write(self, aggregate: Order, *, expected: Hashable) -> bool:
        fields = _header(aggregate)
        for fixed in ("customer_id", "created_at"):
            fields.pop(fixed)
        if await self.conn.execute(_UPDATE, expected=expected, **fields) != 1:
            return False
        lines = list(aggregate.lines.values())
        if lines != self._lines_seen.get(id(aggregate)):
            await self.conn.execute(_DELETE_LINES, id=aggregate.id)
            await self.conn.executemany(_INSERT_LINE, _line_rows(aggregate))
            self._lines_seen[id(aggregate)] = lines
        return True

    async def _conflict(self, aggregate: Order) -> Exception:
        current = await self.conn.fetchval(_VERSION, id=aggregate.id)
        if current is None:  # the row is gone: report the version this save started from
            current = cast(int, self.loaded_token(aggregate))
        return OrderConflict(aggregate.id, current_version=int(current))
