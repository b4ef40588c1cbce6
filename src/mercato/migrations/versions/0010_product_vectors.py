"""catalog search: each product's embedding, and pgvector's HNSW index where it exists (expand)

``catalog_product_vectors`` holds one row per product the indexer was asked to embed: the
vector (384 float32, little-endian) once embedded, NULL while it waits. New tables only, so
the running release is untouched; the downgrade drops them (the vectors are derived data:
``mercato search reindex`` makes them again).

PostgreSQL servers that offer the ``vector`` extension (pgvector) also get
``catalog_search_pgvector``, the same vectors as ``vector(384)`` with an HNSW index for cosine
distance, which the search queries instead of scoring in process. Whether it exists is decided
here, once, by ``pg_available_extensions``; offline SQL (``mercato db lint``) leaves it out.
The table is named like the other search indexes, so ``alembic check`` leaves it alone.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _pgvector_available() -> bool:
    context = op.get_context()
    if context.dialect.name != "postgresql" or context.as_sql:
        return False
    found = op.get_bind().execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    )
    return found.first() is not None


def upgrade() -> None:
    op.create_table(
        "catalog_product_vectors",
        sa.Column("product_id", sa.String(length=36), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("embedded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["catalog_products.id"],
            name=op.f("fk_catalog_product_vectors_product_id_catalog_products"),
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_catalog_product_vectors")),
    )
    # new, empty table: a plain CREATE INDEX locks nothing anyone waits for
    op.create_index(
        "ix_catalog_product_vectors_embedded", "catalog_product_vectors", ["embedded_at"]
    )
    op.create_index(
        "ix_catalog_product_vectors_pending",
        "catalog_product_vectors",
        ["requested_at"],
        postgresql_where=sa.text("vector IS NULL"),
        sqlite_where=sa.text("vector IS NULL"),
    )
    if _pgvector_available():
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
        op.execute(
            "CREATE TABLE catalog_search_pgvector (product_id varchar(36) PRIMARY KEY "
            "REFERENCES catalog_products (id), embedding vector(384) NOT NULL)"
        )
        op.execute(
            "CREATE INDEX catalog_search_pgvector_hnsw ON catalog_search_pgvector "
            "USING hnsw (embedding vector_cosine_ops)"
        )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS catalog_search_pgvector")
    op.drop_index("ix_catalog_product_vectors_pending", table_name="catalog_product_vectors")
    op.drop_index("ix_catalog_product_vectors_embedded", table_name="catalog_product_vectors")
    op.drop_table("catalog_product_vectors")
