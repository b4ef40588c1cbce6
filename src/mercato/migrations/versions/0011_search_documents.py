"""catalog search: each product's weighted tsvector stored, not recomputed per search (PostgreSQL)

Migration 0009 indexed the weighted ``tsvector`` (name A, SKU B, description C) as an
*expression*: the GIN index finds the matching products, but ranking them (``ts_rank``) and
re-checking the index's lossy matches recomputed ``to_tsvector`` over every matching product's
description on every search: 180 of 194 ms for a six-word query over 10,000 products, which
held a search server to a few requests a second. This migration stores the vector once per
product in ``catalog_search_docs`` (GIN-indexed), kept in step by triggers that fire only
when a product is created or the value of its name, SKU or description changes (a product's
save sets every column): stock movements and price edits, which update product rows on every
order, neither fire them nor widen the rows they rewrite.

Expand, then contract in one step: the table, trigger and backfill come first (the trigger
before the backfill, and the backfill skips products the trigger already wrote, so no edit
made meanwhile is lost); then 0009's expression index is dropped. The release still running
searches with 0009's statements, which stay correct without that index, only slower, until
it is replaced. The downgrade builds the expression index again (``CONCURRENTLY``) before it
drops the table. SQLite keeps its FTS5 tables (0009): nothing to do there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 18:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _document(row: str) -> str:
    """The weighted tsvector of a product row, as migration 0009 indexed it."""
    return (
        f"setweight(to_tsvector('english', {row}.name), 'A') || "
        f"setweight(to_tsvector('simple', {row}.sku), 'B') || "
        f"setweight(to_tsvector('english', {row}.description), 'C')"
    )


_EXPRESSION_INDEX = (
    "ix_catalog_products_search_doc ON catalog_products USING gin (("
    "setweight(to_tsvector('english', name), 'A') || "
    "setweight(to_tsvector('simple', sku), 'B') || "
    "setweight(to_tsvector('english', description), 'C')))"
)

_UP = [
    """CREATE TABLE IF NOT EXISTS catalog_search_docs (
        product_id VARCHAR(36) NOT NULL,
        doc TSVECTOR NOT NULL,
        CONSTRAINT pk_catalog_search_docs PRIMARY KEY (product_id),
        CONSTRAINT fk_catalog_search_docs_product_id_catalog_products FOREIGN KEY (product_id)
            REFERENCES catalog_products (id) ON DELETE CASCADE
    )""",
    f"""CREATE OR REPLACE FUNCTION catalog_search_doc() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO catalog_search_docs (product_id, doc) VALUES (NEW.id, {_document("NEW")})
        ON CONFLICT (product_id) DO UPDATE SET doc = EXCLUDED.doc;
        RETURN NULL;
    END $$""",
    """CREATE OR REPLACE TRIGGER catalog_search_doc AFTER INSERT
    ON catalog_products FOR EACH ROW EXECUTE FUNCTION catalog_search_doc()""",
    # a product's save sets every column, changed or not: the values decide, not the SET list
    """CREATE OR REPLACE TRIGGER catalog_search_doc_update AFTER UPDATE OF name, sku, description
    ON catalog_products FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.sku IS DISTINCT FROM NEW.sku
          OR OLD.description IS DISTINCT FROM NEW.description)
    EXECUTE FUNCTION catalog_search_doc()""",
    f"""INSERT INTO catalog_search_docs (product_id, doc)
    SELECT p.id, {_document("p")} FROM catalog_products AS p
    ON CONFLICT (product_id) DO NOTHING""",
    # a new table only the trigger writes, and only for product edits: built in place
    "CREATE INDEX IF NOT EXISTS ix_catalog_search_docs_doc ON catalog_search_docs USING gin (doc)",
]
_DOWN = [
    "DROP TRIGGER IF EXISTS catalog_search_doc_update ON catalog_products",
    "DROP TRIGGER IF EXISTS catalog_search_doc ON catalog_products",
    "DROP FUNCTION IF EXISTS catalog_search_doc()",
    "DROP TABLE IF EXISTS catalog_search_docs",
]


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for statement in _UP:
        op.execute(statement)
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_catalog_products_search_doc")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_EXPRESSION_INDEX}")
    for statement in _DOWN:
        op.execute(statement)
