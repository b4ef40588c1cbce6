"""The search statements, in each database's own SQL (migrations 0009, 0011 and 0012 built
and tuned their indexes).

PostgreSQL matches each product's stored weighted ``tsvector`` (name A, SKU B, description C;
``catalog_search_docs``, migration 0011) with a prefix ``tsquery`` of the terms, and the
lower-cased name by ``pg_trgm`` word similarity (``<%``), in one statement that both GIN
indexes answer. SQLite asks its two FTS5 tables, words (porter stemmer, prefix queries) and
trigrams. Every statement returns at most ``depth`` candidates per signal that pass the
filters, with what ranking them needs and the columns of the public view: a search page is
built from them without reading its products again.
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
_SHOWN = (
    "p.id, p.sku, p.name, p.description, p.price_amount, p.currency, p.weight_grams, "
    "p.active, p.available, p.version"
)
# ts_rank's weights of D, C, B, A: description (C) 0.2, SKU (B) 0.5, name (A) 1.0
_WEIGHTS = "'{0.05, 0.2, 0.5, 1.0}'"

# Each statement comes twice. The *top* one ranks every match but joins only the best
# ``depth`` to their products, with the filters in the join: a candidate the filters refuse
# comes back with a NULL id, so the store can tell "fewer matches than depth" (the answer is
# complete) from "the filters refused some of the best" (it then asks the *filtered* one,
# which joins every match to its product first: exact, and as slow as joining them all).
# Without filters only inactive products are refused, so the top one nearly always answers.
# Each returns the public view's columns, so the page needs no read of its own.


def _pg_grams(*, filtered: bool) -> str:
    """The ``depth`` products whose lower-cased name is most like the query by trigrams (the
    name's GIN index; 0012 makes the planner use it), for a short query (Query.fuzzy).

    None (a one-time filter: their index is not even read) when the query is a product's
    SKU, or when all the ``depth`` best words candidates have every term as the start of a
    word of their name (``:named``: domain.search.names_every_term as a pattern): such names
    are what the trigrams would find, and comparing thousands of them (a prefix such as
    "kett" at 100,000 products) was most of the statement. The trigram ranking then ranks
    the words candidates (search_store)."""
    return f"""
        , grams AS MATERIALIZED (
            SELECT p.id, word_similarity(CAST(:text AS text), lower(p.name)) AS similarity
            FROM catalog_products AS p
            WHERE CAST(:fuzzy AS boolean) AND CAST(:text AS text) <% lower(p.name)
                AND NOT EXISTS (SELECT 1 FROM exact)
                AND (SELECT count(*) FROM words AS w JOIN catalog_products AS n ON n.id = w.id
                     WHERE lower(n.name) ~ CAST(:named AS text)) < :depth
                {f"AND p.active AND {_FILTERS}" if filtered else ""}
            ORDER BY similarity DESC, p.id
            LIMIT :depth
        )"""


def _pg_words(*, filtered: bool) -> str:
    """The ``depth`` best products by words. Unfiltered, from catalog_search_words (migration
    0014): the same statement, planned through the GIN index (a scan of every document cost
    2-3x as much)."""
    if not filtered:
        return (
            "SELECT product_id AS id, words "
            "FROM catalog_search_words(CAST(:tsquery AS text), CAST(:depth AS integer))"
        )
    inner = f"JOIN catalog_products AS p ON p.id = d.product_id AND p.active AND {_FILTERS}"
    return f"""SELECT d.product_id AS id, ts_rank({_WEIGHTS}, d.doc, q) AS words
            FROM catalog_search_docs AS d {inner}, to_tsquery('english', :tsquery) AS q
            WHERE d.doc @@ q
            ORDER BY words DESC, d.product_id
            LIMIT :depth"""


def _pg_lexical(*, trigrams: bool, filtered: bool) -> str:
    """The product whose SKU is ``:sku`` (``exact``), the words candidates and, with
    pg_trgm, the trigram candidates; ``exact``, ``words`` and ``similarity`` say which.
    One statement, one round trip: most shoppers' queries are one word, and every one-word
    query could be a SKU (the lookup was a statement of its own). ``:near`` lists products
    to read as well (``near``: the semantic candidates, when they are known before it)."""
    grams = _pg_grams(filtered=filtered) if trigrams else ""
    either = (
        "SELECT id, NULL, similarity, false, false FROM grams"
        if trigrams
        else "SELECT NULL, NULL, NULL, false, false"
    )
    return f"""
        WITH exact AS MATERIALIZED (
            SELECT p.id FROM catalog_products AS p
            WHERE p.sku = CAST(:sku AS text) AND p.active AND {_FILTERS}
        ),
        words AS MATERIALIZED ({_pg_words(filtered=filtered)}){grams},
        candidates (id, words, similarity, exact, near) AS (
            SELECT id, words, CAST(NULL AS real), false, false FROM words UNION ALL {either}
            UNION ALL SELECT id, NULL, NULL, true, false FROM exact
            UNION ALL SELECT id, NULL, NULL, false, true
                FROM unnest(CAST(:near AS text[])) AS near (id)
        )
        SELECT c.words, c.similarity, c.exact, c.near, {_SHOWN}
        FROM candidates AS c
        LEFT JOIN catalog_products AS p ON p.id = c.id AND p.active AND {_FILTERS}
        WHERE c.id IS NOT NULL
        """


PG_LEXICAL_TOP = sql(sa.text(_pg_lexical(trigrams=True, filtered=False)))
PG_LEXICAL_FILTERED = sql(sa.text(_pg_lexical(trigrams=True, filtered=True)))
# without pg_trgm: full-text words only; typos are then matched among these candidates
PG_WORDS_TOP = sql(sa.text(_pg_lexical(trigrams=False, filtered=False)))
PG_WORDS_FILTERED = sql(sa.text(_pg_lexical(trigrams=False, filtered=True)))
HAS_TRIGRAMS = sql(sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'"))


def _sqlite(table: str, weights: str, *, filtered: bool) -> str:
    """The ``depth`` best matches of one FTS5 table, by ``bm25`` with these column weights.
    Unfiltered, FTS5's own ``ORDER BY rank LIMIT`` keeps them before any product is read."""
    bm25 = f"bm25({table}, {weights})"
    if filtered:
        return f"""
            SELECT -{bm25} AS rank, {_SHOWN}
            FROM {table} AS f JOIN catalog_products AS p ON p.rowid = f.rowid
            WHERE {table} MATCH :match AND p.active = 1 AND {_FILTERS}
            ORDER BY {bm25}, p.id
            LIMIT :depth
            """
    return f"""
        SELECT -f.rank AS rank, {_SHOWN}
        FROM (SELECT rowid AS rid, rank FROM {table}
              WHERE {table} MATCH :match AND rank MATCH 'bm25({weights})'
              ORDER BY rank
              LIMIT :depth) AS f
        LEFT JOIN catalog_products AS p ON p.rowid = f.rid AND p.active = 1 AND {_FILTERS}
        ORDER BY f.rank, p.id
        """


# bm25's weights: name 10, SKU 4, description 1; trigrams: name 3, SKU 1
_WORDS, _GRAMS = ("catalog_search_words", "10.0, 4.0, 1.0"), ("catalog_search_grams", "3.0, 1.0")
SQLITE_WORDS_TOP = sql(sa.text(_sqlite(*_WORDS, filtered=False)))
SQLITE_WORDS_FILTERED = sql(sa.text(_sqlite(*_WORDS, filtered=True)))
SQLITE_GRAMS_TOP = sql(sa.text(_sqlite(*_GRAMS, filtered=False)))
SQLITE_GRAMS_FILTERED = sql(sa.text(_sqlite(*_GRAMS, filtered=True)))

_p = products.c
_bind = sa.bindparam
BY_SKU = sql(
    sa.select(
        _p.id,
        _p.sku,
        _p.name,
        _p.description,
        _p.price_amount,
        _p.currency,
        _p.weight_grams,
        _p.active,
        _p.available,
        _p.version,
    ).where(
        _p.sku == _bind("sku"),
        _p.active == sa.true(),
        _p.available >= _bind("min_available"),
        _p.price_amount >= _bind("min_price"),
        _p.price_amount <= _bind("max_price"),
    )
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


def named_pattern(terms: tuple[str, ...]) -> str:
    """A regular expression (PostgreSQL's) matching a lower-cased name that has every term as
    the start of one of its words (domain.search.names_every_term; terms are letters and
    digits: nothing to escape)."""
    return "^" + "".join(f"(?=.*\\m{term})" for term in terms)


def fts5_words(terms: tuple[str, ...]) -> str:
    """An FTS5 query matching any of the terms as a word prefix, each term also as a word.

    The porter stemmer asks for "kettl*" when the shopper types "kettle", and that finds a
    kettlebell too. bm25 weighs a column's hits before it saturates them, so one hit in the
    name (weight 10) is already near the most a phrase can score, and the shorter product
    wins: a "Kettlebell 8 kg" outranked every kettle with a description. Its own phrase for
    the whole word lets the products that hold the word itself score twice."""
    return " OR ".join(f'"{term}" OR "{term}"*' for term in terms)


def fts5_grams(terms: tuple[str, ...], *, limit: int = 24) -> str | None:
    """An FTS5 trigram query matching any four letters in a row of a term of five or more,
    any three of a shorter one (None: no term is long enough). Four letters share a typo's
    neighbourhood as well as three do, but far fewer names hold them ("phon" against "one"):
    a third of the matches to rank."""
    grams = dict.fromkeys(
        t[i : i + size]
        for t in terms
        for size in [4 if len(t) >= 5 else 3]
        for i in range(len(t) - size + 1)
    )
    if not grams:
        return None
    return " OR ".join(f'"{gram}"' for gram in list(grams)[:limit])
