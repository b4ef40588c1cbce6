"""The catalog's tables, and the explicit mapping between a product row and a Product."""

from __future__ import annotations

import sqlalchemy as sa

from mercato.catalog.domain import Product, ReservedLine
from mercato.kernel.money import Money
from mercato.platform.db import Row, metadata

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
    # the sweeper's question (active and expired); a settled reservation leaves the index
    sa.Index(
        "ix_catalog_reservations_active",
        "expires_at",
        postgresql_where=sa.text("state = 'active'"),
        sqlite_where=sa.text("state = 'active'"),
    ),
)


def product_from_row(row: Row) -> Product:
    """The Product a ``catalog_products`` row holds."""
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


def product_row(product: Product) -> dict[str, object]:
    """The ``catalog_products`` row of a Product."""
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


def line_from_row(row: Row, *, quantity: int) -> ReservedLine:
    """What an order line records of a product row (its price and weight at this moment)."""
    return ReservedLine(
        product_id=row["id"],
        sku=row["sku"],
        name=row["name"],
        price=Money(row["price_amount"], row["currency"]),
        weight_grams=row["weight_grams"],
        quantity=quantity,
    )


def product_view(row: Row, *, staff: bool) -> dict[str, object]:
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


vectors = sa.Table(
    "catalog_product_vectors",
    metadata,
    sa.Column("product_id", sa.String(36), sa.ForeignKey("catalog_products.id"), primary_key=True),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("vector", sa.LargeBinary(), nullable=True),  # 384 float32; NULL: waiting
    sa.Column("embedded_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_catalog_product_vectors_embedded", "embedded_at"),
    sa.Index(
        "ix_catalog_product_vectors_pending",
        "requested_at",
        postgresql_where=sa.text("vector IS NULL"),
        sqlite_where=sa.text("vector IS NULL"),
    ),
)
