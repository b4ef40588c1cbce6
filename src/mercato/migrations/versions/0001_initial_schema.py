"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 16:57:54.293288
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_products",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("weight_grams", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "available >= 0", name=op.f("ck_catalog_products_available_not_negative")
        ),
        sa.CheckConstraint(
            "price_amount >= 0", name=op.f("ck_catalog_products_price_not_negative")
        ),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_catalog_products_reserved_not_negative")),
        sa.CheckConstraint("sold >= 0", name=op.f("ck_catalog_products_sold_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_catalog_products_sku")),
    )
    op.create_table(
        "customers_customers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers_customers")),
        sa.UniqueConstraint("email", name=op.f("uq_customers_customers_email")),
    )
    op.create_table(
        "orders_orders",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("shipping", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("discount_code", sa.String(length=40), nullable=True),
        sa.Column("discount_percent", sa.Integer(), nullable=False),
        sa.Column("shipping_address", sa.Text(), nullable=True),
        sa.Column("billing_address", sa.Text(), nullable=True),
        sa.Column("checkout_payment_id", sa.String(length=36), nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("tracking_code", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("total >= 0", name=op.f("ck_orders_orders_total_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders_orders")),
    )
    with op.batch_alter_table("orders_orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_orders_customer", ["customer_id", "id"], unique=False)
        batch_op.create_index("ix_orders_orders_status", ["status", "id"], unique=False)

    op.create_table(
        "payments_payments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("provider_reference", sa.String(length=100), nullable=False),
        sa.Column("failure_reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_payments_payments_amount_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments_payments")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payments_payments_idempotency_key")),
    )
    with op.batch_alter_table("payments_payments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payments_payments_order", ["order_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_payments_payments_status", ["status", "created_at"], unique=False)
        batch_op.create_index(
            "uq_payments_payments_live_order",
            ["order_id"],
            unique=True,
            postgresql_where=sa.text("status IN ('pending', 'captured', 'refunded')"),
            sqlite_where=sa.text("status IN ('pending', 'captured', 'refunded')"),
        )

    op.create_table(
        "platform_outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("aggregate_type", sa.String(length=40), nullable=False),
        sa.Column("aggregate_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_platform_outbox")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("platform_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_platform_outbox_unpublished",
            ["aggregate_id", "seq"],
            unique=False,
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )

    op.create_table(
        "catalog_reservations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_catalog_reservations_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["catalog_products.id"],
            name=op.f("fk_catalog_reservations_product_id_catalog_products"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_reservations")),
    )
    with op.batch_alter_table("catalog_reservations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_catalog_reservations_expiry", ["state", "expires_at"], unique=False
        )
        batch_op.create_index("ix_catalog_reservations_order", ["order_id", "state"], unique=False)

    op.create_table(
        "catalog_stock_adjustments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("actor_id", sa.String(length=36), nullable=False),
        sa.Column("available_after", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["catalog_products.id"],
            name=op.f("fk_catalog_stock_adjustments_product_id_catalog_products"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_stock_adjustments")),
    )
    with op.batch_alter_table("catalog_stock_adjustments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_catalog_stock_adjustments_product", ["product_id", "id"], unique=False
        )

    op.create_table(
        "orders_lines",
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("weight_grams", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_orders_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders_orders.id"],
            name=op.f("fk_orders_lines_order_id_orders_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", "product_id", name=op.f("pk_orders_lines")),
    )


def downgrade() -> None:
    op.drop_table("orders_lines")
    with op.batch_alter_table("catalog_stock_adjustments", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_stock_adjustments_product")

    op.drop_table("catalog_stock_adjustments")
    with op.batch_alter_table("catalog_reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_reservations_order")
        batch_op.drop_index("ix_catalog_reservations_expiry")

    op.drop_table("catalog_reservations")
    with op.batch_alter_table("platform_outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_platform_outbox_unpublished",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )

    op.drop_table("platform_outbox")
    with op.batch_alter_table("payments_payments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_payments_payments_live_order",
            postgresql_where=sa.text("status IN ('pending', 'captured', 'refunded')"),
            sqlite_where=sa.text("status IN ('pending', 'captured', 'refunded')"),
        )
        batch_op.drop_index("ix_payments_payments_status")
        batch_op.drop_index("ix_payments_payments_order")

    op.drop_table("payments_payments")
    with op.batch_alter_table("orders_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_orders_status")
        batch_op.drop_index("ix_orders_orders_customer")

    op.drop_table("orders_orders")
    op.drop_table("customers_customers")
    op.drop_table("catalog_products")
