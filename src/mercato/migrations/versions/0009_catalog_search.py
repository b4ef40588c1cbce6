"""catalog search: full-text and trigram indexes over the products (an expand migration)

PostgreSQL: ``pg_trgm``, a GIN index over a weighted ``tsvector`` of each product (name A, SKU
B, description C) and a trigram GIN index over its lower-cased name. Both are *expression*
indexes on ``catalog_products``: no column is added, so the release still running writes
products as before and every write is searchable at once. They are built ``CONCURRENTLY``
outside the migration's transaction (products are read on every order), with ``IF NOT
EXISTS`` so a failed run can be repeated: a concurrent build that fails can leave an *invalid*
index behind, which the repeat would keep; after such a failure, ``DROP INDEX CONCURRENTLY``
it before running this again. The expressions must stay exactly those of
``mercato.catalog.store.search_sql``, or the planner will not use the indexes. The extension
is left in place by the downgrade: other schemas in the database may use it. A server without
``pg_trgm`` (some builds leave out the contrib modules) gets the full-text index only.

SQLite: two FTS5 tables with ``catalog_products`` as their external content (words with the
porter stemmer and prefix indexes; trigrams of the name and SKU), kept in step by triggers in
the writing transaction, and filled by ``rebuild``. A later batch migration that recreates
``catalog_products`` drops these triggers: it must create them again and rebuild
(``tests/integration/test_search_schema.py`` fails when they are missing at head).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 13:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DOCUMENT = (
    "setweight(to_tsvector('english', name), 'A') || "
    "setweight(to_tsvector('simple', sku), 'B') || "
    "setweight(to_tsvector('english', description), 'C')"
)
_PG_INDEXES = {
    "ix_catalog_products_search_doc": f"USING gin (({_DOCUMENT}))",
    "ix_catalog_products_search_name": "USING gin (lower(name) gin_trgm_ops)",
}

_SQLITE_UP = [
    "CREATE VIRTUAL TABLE catalog_search_words USING fts5(name, sku, description, "
    "content='catalog_products', tokenize='porter unicode61 remove_diacritics 2', prefix='2 3')",
    "CREATE VIRTUAL TABLE catalog_search_grams USING fts5(name, sku, "
    "content='catalog_products', tokenize='trigram')",
    """CREATE TRIGGER catalog_search_insert AFTER INSERT ON catalog_products BEGIN
        INSERT INTO catalog_search_words(rowid, name, sku, description)
        VALUES (new.rowid, new.name, new.sku, new.description);
        INSERT INTO catalog_search_grams(rowid, name, sku) VALUES (new.rowid, new.name, new.sku);
    END""",
    """CREATE TRIGGER catalog_search_delete AFTER DELETE ON catalog_products BEGIN
        INSERT INTO catalog_search_words(catalog_search_words, rowid, name, sku, description)
        VALUES ('delete', old.rowid, old.name, old.sku, old.description);
        INSERT INTO catalog_search_grams(catalog_search_grams, rowid, name, sku)
        VALUES ('delete', old.rowid, old.name, old.sku);
    END""",
    """CREATE TRIGGER catalog_search_update AFTER UPDATE OF name, sku, description
    ON catalog_products BEGIN
        INSERT INTO catalog_search_words(catalog_search_words, rowid, name, sku, description)
        VALUES ('delete', old.rowid, old.name, old.sku, old.description);
        INSERT INTO catalog_search_grams(catalog_search_grams, rowid, name, sku)
        VALUES ('delete', old.rowid, old.name, old.sku);
        INSERT INTO catalog_search_words(rowid, name, sku, description)
        VALUES (new.rowid, new.name, new.sku, new.description);
        INSERT INTO catalog_search_grams(rowid, name, sku) VALUES (new.rowid, new.name, new.sku);
    END""",
    "INSERT INTO catalog_search_words(catalog_search_words) VALUES ('rebuild')",
    "INSERT INTO catalog_search_grams(catalog_search_grams) VALUES ('rebuild')",
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS catalog_search_update",
    "DROP TRIGGER IF EXISTS catalog_search_delete",
    "DROP TRIGGER IF EXISTS catalog_search_insert",
    "DROP TABLE IF EXISTS catalog_search_grams",
    "DROP TABLE IF EXISTS catalog_search_words",
]


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _trigrams_available() -> bool:
    """Whether the server offers pg_trgm (offline SQL assumes it does)."""
    if op.get_context().as_sql:
        return True
    found = op.get_bind().execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    )
    return found.first() is not None


def upgrade() -> None:
    if not _postgres():
        for statement in _SQLITE_UP:
            op.execute(statement)
        return
    indexes = dict(_PG_INDEXES)
    if _trigrams_available():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    else:  # search then matches typos among the words it finds (docs/search.md)
        del indexes["ix_catalog_products_search_name"]
    with op.get_context().autocommit_block():
        for name, body in indexes.items():
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON catalog_products {body}")


def downgrade() -> None:
    if not _postgres():
        for statement in _SQLITE_DOWN:
            op.execute(statement)
        return
    with op.get_context().autocommit_block():
        for name in _PG_INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
