"""catalog search: the best word matches through the documents' GIN index (PostgreSQL)

The search's words candidates (the ``depth`` documents of ``catalog_search_docs`` that
``ts_rank`` ranks highest for the query) were planned as a sequential scan of every document
with ``@@`` on each: PostgreSQL costs ``@@`` on a ``tsvector`` as one comparison, so up to some
tens of thousands of documents the scan looks cheaper than the GIN index. It is not: at
10,000 products the scan took 2.6 ms for a query matching nothing and 8 ms for a four-word
one, against 0.6 and 2.7 ms through the index (EXPLAIN ANALYZE, docs/search.md).

``@@`` belongs to PostgreSQL itself (unlike pg_trgm's comparison, whose cost migration 0012
corrects), so its cost is left alone. The statement moves into a function,
``catalog_search_words(query, depth)``, declared with ``SET enable_seqscan = off``: only its
own statement is planned without the scan, nothing else in the session is touched, and a
``pg_dump`` carries the setting with the function. The function answers exactly what the
statement did (same matches, same ranking, ties by product id). Nothing on SQLite.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 01:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ts_rank's weights of D, C, B, A: description (C) 0.2, SKU (B) 0.5, name (A) 1.0
_FUNCTION = """
CREATE FUNCTION catalog_search_words(query text, depth integer)
RETURNS TABLE (product_id varchar, words real)
LANGUAGE sql STABLE PARALLEL SAFE ROWS 60
SET enable_seqscan = off
AS $$
    SELECT d.product_id, ts_rank('{0.05, 0.2, 0.5, 1.0}', d.doc, q) AS words
    FROM catalog_search_docs AS d, to_tsquery('english', query) AS q
    WHERE d.doc @@ q
    ORDER BY words DESC, d.product_id
    LIMIT depth
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION catalog_search_words(text, integer)")
