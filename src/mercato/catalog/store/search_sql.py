"""The search statements, in each database's own SQL (migrations 0009 and 0011 built their indexes).

PostgreSQL matches each product's stored weighted ``tsvector`` (name A, SKU B, description C;
``catalog_search_docs``, migration 0011) with a prefix ``tsquery`` of the terms, and the
lower-cased name by ``pg_trgm`` word similarity (``<%``), in one statement that both GIN
indexes answer. SQLite asks its two FTS5 tables, words
(porter stemmer, prefix queries) and trigrams. Every statement applies the filters and returns
at most ``depth`` candidates with what ranking them needs; the products themselves are read
for one page only.
"""

from __future__ import annotations

import sqlalchemy as sa

from mercato.catalog.store.tables import products
from mercato.platform.db import metadata, sql

# the search indexes are written in each database's SQL by migrations 0009 and 0011
metadata.info.setdefault("unmanaged", set()).update(
    {"ix_catalog_products_search_", "catalog_search_"}
)

_FILTERS = (
    "p.available >= :min_available AND p.price_amount >= :min_price "
    "AND p.price_amount <= :max_price"
)
# ts_rank's weights of D, C, B, A: description (C) 0.2, SKU (B) 0.5, name (A) 1.0
_WEIGHTS = "'{0.05, 0.2, 0.5, 1.0}'"

# The candidates: the ``depth`` products whose stored document best matches the words (its GIN
# index, with the words' rank), and, for a short query (Query.fuzzy), the products whose
# lower-cased name is like it by trigrams (the name's GIN index, rank 0); each product once,
# ranked by its words' rank plus its name's trigram similarity, to keep the best ``depth``.
PG_LEXICAL = sql(
    sa.text(
        f"""
        WITH candidates AS (
            (SELECT d.product_id AS id, ts_rank({_WEIGHTS}, d.doc, q) AS words
             FROM catalog_search_docs AS d, to_tsquery('english', :tsquery) AS q
             WHERE d.doc @@ q
             ORDER BY words DESC
             LIMIT :depth)
            UNION ALL
            SELECT p.id, 0 FROM catalog_products AS p
            WHERE CAST(:fuzzy AS boolean) AND CAST(:text AS text) <% lower(p.name)
        )
        SELECT p.id, p.name, p.sku, max(c.words) AS words
        FROM candidates AS c JOIN catalog_products AS p ON p.id = c.id
        WHERE p.active AND {_FILTERS}
        GROUP BY p.id
        ORDER BY max(c.words) + word_similarity(CAST(:text AS text), lower(p.name)) DESC, p.id
        LIMIT :depth
        """
    )
)

# without pg_trgm: full-text words only; typos are then matched among these candidates
PG_WORDS = sql(
    sa.text(
        f"""
        SELECT p.id, p.name, p.sku, ts_rank({_WEIGHTS}, d.doc, q) AS words
        FROM catalog_search_docs AS d
        JOIN catalog_products AS p ON p.id = d.product_id,
             to_tsquery('english', :tsquery) AS q
        WHERE p.active AND {_FILTERS} AND d.doc @@ q
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
