"""The search statements, in each database's own SQL (migration 0009 built their indexes).

PostgreSQL matches the weighted ``tsvector`` (name A, SKU B, description C) with a prefix
``tsquery`` of the terms, and the lower-cased name by ``pg_trgm`` word similarity (``<%``),
in one statement both GIN indexes answer (a BitmapOr). SQLite asks its two FTS5 tables, words
(porter stemmer, prefix queries) and trigrams. Every statement applies the filters and returns
at most ``depth`` candidates with what ranking them needs; the products themselves are read
for one page only.
"""

from __future__ import annotations

import sqlalchemy as sa

from mercato.catalog.store.tables import products
from mercato.platform.db import metadata, sql

# the search indexes are written in each database's SQL by migration 0009, not by the tables
metadata.info.setdefault("unmanaged", set()).update(
    {"ix_catalog_products_search_", "catalog_search_"}
)

# Keep in step with migration 0009: the planner uses the index only for this very expression.
DOCUMENT = (
    "setweight(to_tsvector('english', name), 'A') || "
    "setweight(to_tsvector('simple', sku), 'B') || "
    "setweight(to_tsvector('english', description), 'C')"
)
_FILTERS = (
    "p.available >= :min_available AND p.price_amount >= :min_price "
    "AND p.price_amount <= :max_price"
)

PG_LEXICAL = sql(
    sa.text(
        f"""
        SELECT p.id, p.name, p.sku,
               CASE WHEN ({DOCUMENT}) @@ q THEN ts_rank('{{0.05, 0.2, 0.5, 1.0}}', {DOCUMENT}, q)
                    ELSE 0 END AS words
        FROM catalog_products AS p, to_tsquery('english', :tsquery) AS q
        WHERE p.active AND {_FILTERS}
          AND (({DOCUMENT}) @@ q OR CAST(:text AS text) <% lower(p.name))
        ORDER BY ts_rank('{{0.05, 0.2, 0.5, 1.0}}', {DOCUMENT}, q)
                 + word_similarity(CAST(:text AS text), lower(p.name)) DESC, p.id
        LIMIT :depth
        """
    )
)

# without pg_trgm: full-text words only; typos are then matched among these candidates
PG_WORDS = sql(
    sa.text(
        f"""
        SELECT p.id, p.name, p.sku, ts_rank('{{0.05, 0.2, 0.5, 1.0}}', {DOCUMENT}, q) AS words
        FROM catalog_products AS p, to_tsquery('english', :tsquery) AS q
        WHERE p.active AND {_FILTERS} AND ({DOCUMENT}) @@ q
        ORDER BY words DESC, p.id
        LIMIT :depth
        """
    )
)
HAS_TRIGRAMS = sql(sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'"))

SQLITE_WORDS = sql(
    sa.text(
        f"""
        SELECT p.id, p.name, p.sku, -w.rank AS words
        FROM (SELECT rowid AS rid, bm25(catalog_search_words, 10.0, 4.0, 1.0) AS rank
              FROM catalog_search_words WHERE catalog_search_words MATCH :match) AS w
        JOIN catalog_products AS p ON p.rowid = w.rid
        WHERE p.active = 1 AND {_FILTERS}
        ORDER BY w.rank, p.id
        LIMIT :depth
        """
    )
)

SQLITE_GRAMS = sql(
    sa.text(
        f"""
        SELECT p.id, p.name, p.sku, 0.0 AS words
        FROM (SELECT rowid AS rid, bm25(catalog_search_grams, 3.0, 1.0) AS rank
              FROM catalog_search_grams WHERE catalog_search_grams MATCH :match) AS g
        JOIN catalog_products AS p ON p.rowid = g.rid
        WHERE p.active = 1 AND {_FILTERS}
        ORDER BY g.rank, p.id
        LIMIT :depth
        """
    )
)

_p = products.c
_bind = sa.bindparam
BY_SKU = sql(
    sa.select(_p.id).where(
        _p.sku == _bind("sku"),
        _p.active == sa.true(),
        _p.available >= _bind("min_available"),
        _p.price_amount >= _bind("min_price"),
        _p.price_amount <= _bind("max_price"),
    )
)
_SHOWN = (
    "p.id, p.sku, p.name, p.description, p.price_amount, p.currency, p.weight_grams, "
    "p.active, p.available, p.version"
)
PG_BY_IDS = sql(
    sa.text(
        f"SELECT {_SHOWN} FROM catalog_products AS p "
        f"WHERE p.id = ANY(CAST(:ids AS text[])) AND p.active AND {_FILTERS}"
    )
)
SQLITE_BY_IDS = sql(
    sa.text(
        f"SELECT {_SHOWN} FROM catalog_products AS p "
        f"WHERE p.id IN (SELECT value FROM json_each(:ids)) AND p.active = 1 AND {_FILTERS}"
    )
)


def tsquery(terms: tuple[str, ...]) -> str:
    """A prefix ``tsquery`` matching any of the terms (words only: nothing to escape)."""
    return " | ".join(f"{term}:*" for term in terms)


def fts5_words(terms: tuple[str, ...]) -> str:
    """An FTS5 query matching any of the terms as a word prefix."""
    return " OR ".join(f'"{term}"*' for term in terms)


def fts5_grams(terms: tuple[str, ...], *, limit: int = 24) -> str | None:
    """An FTS5 trigram query matching any trigram of the terms (None: no term is long enough)."""
    grams = dict.fromkeys(t[i : i + 3] for t in terms for i in range(len(t) - 2))
    if not grams:
        return None
    return " OR ".join(f'"{gram}"' for gram in list(grams)[:limit])
