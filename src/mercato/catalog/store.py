"""Catalog persistence: products, the stock adjustment audit trail, and reservations.

Every stock movement is one guarded ``UPDATE``; none reads a counter and writes it back.
Statements that touch several products are run in product-id order so that two transactions
never wait on each other's rows in opposite orders.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from mercato.catalog.domain import (
    InvalidAdjustment,
    OutOfStock,
    Product,
    ProductInactive,
    ProductNotFound,
    ReservedLine,
    SkuTaken,
)
from mercato.kernel.ids import new_id
from mercato.kernel.money import Money
from mercato.platform.db import Connection, Row, Statement, UniqueViolation, metadata, sql

products = sa.Table(
    "catalog_products",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("sku", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("price_amount", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("weight_grams", sa.Integer(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("available", sa.Integer(), nullable=False),
    sa.Column("reserved", sa.Integer(), nullable=False),
    sa.Column("sold", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.CheckConstraint("available >= 0", name="available_not_negative"),
    sa.CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    sa.CheckConstraint("sold >= 0", name="sold_not_negative"),
    sa.CheckConstraint("price_amount >= 0", name="price_not_negative"),
)

adjustments = sa.Table(
    "catalog_stock_adjustments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("product_id", sa.String(36), sa.ForeignKey("catalog_products.id"), nullable=False),
    sa.Column("delta", sa.Integer(), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("actor_id", sa.String(36), nullable=False),
    sa.Column("available_after", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_catalog_stock_adjustments_product", "product_id", "id"),
)

reservations = sa.Table(
    "catalog_reservations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("order_id", sa.String(36), nullable=False),
    sa.Column("product_id", sa.String(36), sa.ForeignKey("catalog_products.id"), nullable=False),
    sa.Column("quantity", sa.Integer(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # active | committed | released | returned
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
    sa.Index("ix_catalog_reservations_order", "order_id", "state"),
    sa.Index("ix_catalog_reservations_expiry", "state", "expires_at"),
)

_p = products.c
_r = reservations.c
_bind = sa.bindparam

_INSERT = sql(sa.insert(products).values({c.name: _bind(c.name) for c in products.c}))
_BY_ID = sql(sa.select(products).where(_p.id == _bind("id")))
_BY_ID_FOR_UPDATE = sql(sa.select(products).where(_p.id == _bind("id")).with_for_update())
_UPDATE = sql(
    sa.update(products)
    .where(_p.id == _bind("id"), _p.version == _bind("expected"))
    .values(
        name=_bind("name"),
        description=_bind("description"),
        price_amount=_bind("price_amount"),
        currency=_bind("currency"),
        weight_grams=_bind("weight_grams"),
        active=_bind("active"),
        updated_at=_bind("updated_at"),
        version=_bind("version"),
    )
)
_VERSION = sql(sa.select(_p.version).where(_p.id == _bind("id")))
_page_filter = sa.and_(
    _p.id > _bind("after"),
    sa.or_(_p.active == sa.true(), _bind("include_inactive", type_=sa.Boolean)),
    sa.or_(
        sa.func.lower(_p.name).like(_bind("pattern"), escape="\\"),
        sa.func.lower(_p.sku).like(_bind("pattern"), escape="\\"),
    ),
)
_PAGE = sql(sa.select(products).where(_page_filter).order_by(_p.id).limit(_bind("limit")))

_ADJUST = sql(
    sa.update(products)
    .where(_p.id == _bind("id"), _p.available + _bind("delta") >= 0)
    .values(available=_p.available + _bind("delta"))
    .returning(_p.available)
)
_INSERT_ADJUSTMENT = sql(
    sa.insert(adjustments).values({c.name: _bind(c.name) for c in adjustments.c})
)
_ADJUSTMENTS = sql(
    sa.select(adjustments)
    .where(adjustments.c.product_id == _bind("product_id"), adjustments.c.id > _bind("after"))
    .order_by(adjustments.c.id)
    .limit(_bind("limit"))
)

_RESERVE = sql(
    sa.update(products)
    .where(_p.id == _bind("id"), _p.active == sa.true(), _p.available >= _bind("qty"))
    .values(available=_p.available - _bind("qty"), reserved=_p.reserved + _bind("qty"))
    .returning(_p.id, _p.sku, _p.name, _p.price_amount, _p.currency, _p.weight_grams)
)
_STOCK_STATE = sql(sa.select(_p.active, _p.available).where(_p.id == _bind("id")))
_INSERT_RESERVATION = sql(
    sa.insert(reservations).values({c.name: _bind(c.name) for c in reservations.c})
)
_MOVE_RESERVATIONS = sql(
    sa.update(reservations)
    .where(_r.order_id == _bind("order_id"), _r.state == _bind("from_state"))
    .values(state=_bind("to_state"))
    .returning(_r.product_id, _r.quantity)
)
_EXPIRED_ORDERS = sql(
    sa.select(_r.order_id)
    .where(_r.state == "active", _r.expires_at < _bind("now"))
    .group_by(_r.order_id)
    .order_by(sa.func.min(_r.expires_at))
    .limit(_bind("limit"))
)
_COMMIT_STOCK = sql(
    sa.update(products)
    .where(_p.id == _bind("id"))
    .values(reserved=_p.reserved - _bind("qty"), sold=_p.sold + _bind("qty"))
)
_RELEASE_STOCK = sql(
    sa.update(products)
    .where(_p.id == _bind("id"))
    .values(reserved=_p.reserved - _bind("qty"), available=_p.available + _bind("qty"))
)
_RETURN_STOCK = sql(
    sa.update(products)
    .where(_p.id == _bind("id"))
    .values(sold=_p.sold - _bind("qty"), available=_p.available + _bind("qty"))
)
_SNAPSHOTS = sql(
    sa.select(
        _p.id, _p.sku, _p.name, _p.price_amount, _p.currency, _p.weight_grams, _p.active
    ).where(_p.id == _bind("id"))
)


def _from_row(row: Row) -> Product:
    return Product(
        id=row["id"],
        sku=row["sku"],
        name=row["name"],
        description=row["description"],
        price=Money(row["price_amount"], row["currency"]),
        weight_grams=row["weight_grams"],
        active=bool(row["active"]),
        available=row["available"],
        reserved=row["reserved"],
        sold=row["sold"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


def _fields(product: Product) -> dict[str, object]:
    return {
        "id": product.id,
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price_amount": product.price.amount,
        "currency": product.price.currency,
        "weight_grams": product.weight_grams,
        "active": product.active,
        "available": product.available,
        "reserved": product.reserved,
        "sold": product.sold,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
        "version": product.version,
    }


async def add(conn: Connection, product: Product) -> None:
    """Insert a new product; SkuTaken if its SKU is in use."""
    try:
        await conn.execute(_INSERT, **_fields(product))
    except UniqueViolation as exc:
        if exc.mentions("sku"):
            raise SkuTaken(product.sku) from None
        raise


async def get(conn: Connection, product_id: str, *, for_update: bool = False) -> Product | None:
    """The product, or None; ``for_update`` row-locks it until commit (a product is one row,
    so the locking read itself sees the lock holder's committed change)."""
    row = await conn.fetchrow(_BY_ID_FOR_UPDATE if for_update else _BY_ID, id=product_id)
    return None if row is None else _from_row(row)


def view(row: Row, *, staff: bool) -> dict[str, object]:
    """A product row as the API shows it (the read model: no aggregate is built for a read)."""
    shown: dict[str, object] = {
        "id": row["id"],
        "sku": row["sku"],
        "name": row["name"],
        "description": row["description"],
        "price": {"amount": row["price_amount"], "currency": row["currency"]},
        "weight_grams": row["weight_grams"],
        "active": bool(row["active"]),
        "available": row["available"],
        "version": row["version"],
    }
    if staff:
        shown.update(
            reserved=row["reserved"],
            sold=row["sold"],
            on_hand=row["available"] + row["reserved"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
    return shown


async def get_view(conn: Connection, product_id: str, *, staff: bool) -> dict[str, object] | None:
    """The API view of a product, or None; inactive products only for staff."""
    row = await conn.fetchrow(_BY_ID, id=product_id)
    if row is None or not (staff or row["active"]):
        return None
    return view(row, staff=staff)


async def save(conn: Connection, product: Product, *, expected_version: int) -> bool:
    """Write a product's attributes if its stored version is still ``expected_version``."""
    fields = _fields(product)
    for counter in ("sku", "available", "reserved", "sold", "created_at"):
        fields.pop(counter)
    return await conn.execute(_UPDATE, expected=expected_version, **fields) == 1


async def version_of(conn: Connection, product_id: str) -> int | None:
    """The stored version of a product, or None if it does not exist."""
    value = await conn.fetchval(_VERSION, id=product_id)
    return None if value is None else int(value)


def like_pattern(text: str | None) -> str:
    """A case-insensitive LIKE pattern matching ``text`` anywhere, wildcards escaped."""
    if not text:
        return "%"
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def page(
    conn: Connection, *, text: str | None, after: str | None, limit: int, include_inactive: bool
) -> list[Product]:
    """Up to ``limit`` products after ``after`` (id order) whose name or SKU contains ``text``."""
    rows = await conn.fetch(
        _PAGE,
        after=after or "",
        limit=limit,
        pattern=like_pattern(text),
        include_inactive=include_inactive,
    )
    return [_from_row(r) for r in rows]


async def adjust(
    conn: Connection, product_id: str, *, delta: int, reason: str, actor_id: str, now: datetime
) -> int:
    """Change available stock by ``delta`` and record why; returns the new available count."""
    available = await conn.fetchval(_ADJUST, id=product_id, delta=delta)
    if available is None:
        state = await conn.fetchrow(_STOCK_STATE, id=product_id)
        if state is None:
            raise ProductNotFound(product_id)
        raise InvalidAdjustment(f"only {state['available']} available; cannot remove {-delta}")
    await conn.execute(
        _INSERT_ADJUSTMENT,
        id=new_id(),
        product_id=product_id,
        delta=delta,
        reason=reason,
        actor_id=actor_id,
        available_after=available,
        created_at=now,
    )
    return int(available)


async def adjustments_page(
    conn: Connection, product_id: str, *, after: str | None, limit: int
) -> list[Row]:
    """Adjustment rows of a product, oldest first."""
    return await conn.fetch(_ADJUSTMENTS, product_id=product_id, after=after or "", limit=limit)


async def snapshot(conn: Connection, product_id: str) -> tuple[ReservedLine, bool] | None:
    """A product's order-relevant attributes and whether it is active, or None."""
    row = await conn.fetchrow(_SNAPSHOTS, id=product_id)
    if row is None:
        return None
    line = ReservedLine(
        product_id=row["id"],
        sku=row["sku"],
        name=row["name"],
        price=Money(row["price_amount"], row["currency"]),
        weight_grams=row["weight_grams"],
        quantity=0,
    )
    return line, bool(row["active"])


async def reserve(
    conn: Connection,
    order_id: str,
    quantities: dict[str, int],
    *,
    expires_at: datetime,
    now: datetime,
) -> list[ReservedLine]:
    """Reserve every line or raise (the caller's transaction then rolls all of it back)."""
    reserved: list[ReservedLine] = []
    for product_id in sorted(quantities):
        qty = quantities[product_id]
        row = await conn.fetchrow(_RESERVE, id=product_id, qty=qty)
        if row is None:
            await _explain_refusal(conn, product_id, qty)
        assert row is not None
        reserved.append(
            ReservedLine(
                product_id=row["id"],
                sku=row["sku"],
                name=row["name"],
                price=Money(row["price_amount"], row["currency"]),
                weight_grams=row["weight_grams"],
                quantity=qty,
            )
        )
    await conn.executemany(
        _INSERT_RESERVATION,
        (
            {
                "id": new_id(),
                "order_id": order_id,
                "product_id": line.product_id,
                "quantity": line.quantity,
                "state": "active",
                "expires_at": expires_at,
                "created_at": now,
            }
            for line in reserved
        ),
    )
    return reserved


async def _explain_refusal(conn: Connection, product_id: str, qty: int) -> None:
    state = await conn.fetchrow(_STOCK_STATE, id=product_id)
    if state is None:
        raise ProductNotFound(product_id)
    if not state["active"]:
        raise ProductInactive(product_id)
    raise OutOfStock(product_id, requested=qty, available=int(state["available"]))


async def _move(
    conn: Connection, order_id: str, *, from_state: str, to_state: str, counters: Statement
) -> list[tuple[str, int]]:
    rows = await conn.fetch(
        _MOVE_RESERVATIONS, order_id=order_id, from_state=from_state, to_state=to_state
    )
    moved = sorted((r["product_id"], int(r["quantity"])) for r in rows)
    await conn.executemany(counters, ({"id": pid, "qty": qty} for pid, qty in moved))
    return moved


async def commit(conn: Connection, order_id: str) -> list[tuple[str, int]]:
    """The order was paid: its active reservations become sold units."""
    return await _move(
        conn, order_id, from_state="active", to_state="committed", counters=_COMMIT_STOCK
    )


async def release(conn: Connection, order_id: str) -> list[tuple[str, int]]:
    """The checkout failed or expired: its active reservations go back to available."""
    return await _move(
        conn, order_id, from_state="active", to_state="released", counters=_RELEASE_STOCK
    )


async def give_back(conn: Connection, order_id: str) -> list[tuple[str, int]]:
    """A paid order was cancelled: its sold units go back to available."""
    return await _move(
        conn, order_id, from_state="committed", to_state="returned", counters=_RETURN_STOCK
    )


async def expired_orders(conn: Connection, *, now: datetime, limit: int) -> list[str]:
    """Orders holding active reservations that expired before ``now``, oldest first."""
    return [r["order_id"] for r in await conn.fetch(_EXPIRED_ORDERS, now=now, limit=limit)]
