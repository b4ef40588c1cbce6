"""Search on the unit of work: lexical candidates from either database, products by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from mercato.catalog.domain.search import Filters, Query, fuzzy_score
from mercato.catalog.store import search_sql as q
from mercato.platform.db import Row
from mercato.platform.uow import Repository


@dataclass(frozen=True, slots=True)
class Lexical:
    """The lexical rankings of a query: exact SKU, full-text words, trigrams (ids, best first)."""

    exact: list[str]
    words: list[str]
    trigrams: list[str]


def _filters(filters: Filters) -> dict[str, int]:
    return {
        "min_available": 1 if filters.in_stock else 0,
        "min_price": filters.min_price,
        "max_price": filters.max_price,
    }


def _rank(rows: Sequence[Row], query: Query) -> tuple[list[str], list[str]]:
    """The candidates ranked by words (those that matched them) and, for a short query, by
    trigram similarity of their name and SKU (those similar enough)."""
    seen: dict[str, Row] = {}
    for row in rows:  # on SQLite a product can come twice: by its words, by its trigrams
        if row["id"] not in seen or row["words"] > seen[row["id"]]["words"]:
            seen[row["id"]] = row
    words = sorted((r for r in seen.values() if r["words"] > 0), key=lambda r: -r["words"])
    if not query.fuzzy:
        return [r["id"] for r in words], []
    terms = query.terms
    fuzzy = {i: fuzzy_score(terms, f"{r['name']} {r['sku']}") for i, r in seen.items()}
    grams = sorted((i for i, s in fuzzy.items() if s > 0), key=lambda i: -fuzzy[i])
    return [r["id"] for r in words], grams


class SearchRepository(Repository):
    """The search statements of :mod:`search_sql`, on the unit of work's connection."""

    __slots__ = ()

    async def has_trigrams(self) -> bool:
        """Whether the database matches trigrams itself (SQLite's FTS5 does; PostgreSQL where
        migration 0009 found pg_trgm)."""
        if self.conn.dialect != "postgresql":
            return True
        return bool(await self.conn.fetchval(q.HAS_TRIGRAMS))

    async def lexical(
        self, query: Query, filters: Filters, *, depth: int, trigrams: bool = True
    ) -> Lexical:
        """The lexical rankings of ``query``, each at most ``depth`` long."""
        conn = self.conn
        bounds = _filters(filters)
        exact: list[str] = []
        if query.sku is not None:
            found = await conn.fetchval(q.BY_SKU, sku=query.sku, **bounds)
            exact = [found] if found else []
        if not query.terms:
            return Lexical(exact, [], [])
        if conn.dialect == "postgresql" and not trigrams:
            rows = await conn.fetch(
                q.PG_WORDS, tsquery=q.tsquery(query.terms), depth=depth, **bounds
            )
        elif conn.dialect == "postgresql":
            rows = await conn.fetch(
                q.PG_LEXICAL,
                tsquery=q.tsquery(query.terms),
                text=" ".join(query.terms),
                fuzzy=query.fuzzy,
                depth=depth,
                **bounds,
            )
        else:
            rows = await self._sqlite(query, bounds, depth)
        words, grams = _rank(rows, query)
        return Lexical(exact, words, grams)

    async def _sqlite(self, query: Query, bounds: dict[str, int], depth: int) -> list[Row]:
        conn = self.conn
        words = q.fts5_words(query.terms)
        rows = await conn.fetch(q.SQLITE_WORDS, match=words, depth=depth, **bounds)
        grams = q.fts5_grams(query.terms) if query.fuzzy else None
        if grams is not None:
            rows += await conn.fetch(q.SQLITE_GRAMS, match=grams, depth=depth, **bounds)
        return rows

    async def shown(self, ids: Sequence[str], filters: Filters) -> dict[str, Row]:
        """The public view's columns of the listed products that pass ``filters``, by id."""
        conn = self.conn
        if not ids:
            return {}
        if conn.dialect == "postgresql":
            rows = await conn.fetch(q.PG_BY_IDS, ids=list(ids), **_filters(filters))
        else:
            rows = await conn.fetch(
                q.SQLITE_BY_IDS, ids=orjson.dumps(list(ids)).decode(), **_filters(filters)
            )
        return {row["id"]: row for row in rows}
