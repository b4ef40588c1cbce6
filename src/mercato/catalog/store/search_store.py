"""Search on the unit of work: lexical candidates from either database, products by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from mercato.catalog.domain.search import Filters, FuzzyMatcher, Query, names_every_term
from mercato.catalog.store import search_sql as q
from mercato.platform.db import Row, Statement
from mercato.platform.uow import Repository


@dataclass(frozen=True, slots=True)
class Lexical:
    """The lexical rankings of a query: exact SKU, full-text words, trigrams (ids, best first),
    and the public view's columns of every product they hold, by id."""

    exact: list[str]
    words: list[str]
    trigrams: list[str]
    rows: dict[str, Row]
    looked_up: frozenset[str] = frozenset()
    """The ``near`` products it read, those the filters refused included."""


def _filters(filters: Filters) -> dict[str, int]:
    return {
        "min_available": 1 if filters.in_stock else 0,
        "min_price": filters.min_price,
        "max_price": filters.max_price,
    }


def _rank(
    rows: Sequence[Row], query: Query, *, fuzzy: bool
) -> tuple[list[str], list[str], dict[str, Row]]:
    """The candidates (best words first, then the others) ranked by words (those that matched
    them) and, when ``fuzzy``, by trigram similarity of their name and SKU (those similar
    enough); and the candidates by id."""
    seen: dict[str, Row] = {}
    for row in rows:  # a product can come twice: by its words, by its trigrams
        if row["id"] not in seen or row["words"] > seen[row["id"]]["words"]:
            seen[row["id"]] = row
    words = sorted((r for r in seen.values() if r["words"] > 0), key=lambda r: -r["words"])
    if not fuzzy:
        return [r["id"] for r in words], [], seen
    matcher = FuzzyMatcher(query.terms)
    similar = {i: matcher.score(f"{r['name']} {r['sku']}") for i, r in seen.items()}
    grams = sorted((i for i, s in similar.items() if s > 0), key=lambda i: -similar[i])
    return [r["id"] for r in words], grams, seen


def _refused_some(rows: Sequence[Row], depth: int) -> bool:
    """Whether a *top* statement's ``depth`` best matches (a full list: there may be more)
    lost some to the filters (their id is NULL), so its answer may be short."""
    return len(rows) >= depth and any(r["id"] is None for r in rows)


def _passing(rows: Sequence[Row], *, rank: str | None) -> list[Row]:
    """The rows the filters let through, their ``words`` the column ``rank`` (higher is
    better) of a words match, 0 for a trigram match."""
    return [{**r, "words": r[rank] if rank else 0.0} for r in rows if r["id"] is not None]


def _pg_params(
    query: Query, bounds: dict[str, int], depth: int, *, trigrams: bool, near: Sequence[str]
) -> dict[str, object]:
    """The parameters of PostgreSQL's lexical statement (search_sql._pg_lexical)."""
    params: dict[str, object] = {
        "tsquery": q.tsquery(query.terms),
        "depth": depth,
        "sku": query.sku,
        "near": list(near),
        **bounds,
    }
    if trigrams:
        params.update(
            text=" ".join(query.terms), fuzzy=query.fuzzy, named=q.named_pattern(query.terms)
        )
    return params


def _named(rows: Sequence[Row], query: Query, depth: int) -> bool:
    """Whether the words found ``depth`` candidates, each with every term as the start of a
    word of its name: the trigram candidates are then not asked for (as PostgreSQL's
    statement decides with ``search_sql.named_pattern``)."""
    return len(rows) >= depth and all(names_every_term(query.terms, r["name"]) for r in rows)


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
        self,
        query: Query,
        filters: Filters,
        *,
        depth: int,
        trigrams: bool = True,
        near: Sequence[str] = (),
    ) -> Lexical:
        """The lexical rankings of ``query``, each at most ``depth`` long, and the ``near``
        products that pass the filters (on PostgreSQL in the same statement). A query that
        is a product's SKU looks for no typos: that product is the answer, and the trigrams
        of a SKU's parts ("kit flk 000000") only found noise below it."""
        bounds = _filters(filters)
        if query.terms and self.conn.dialect == "postgresql":
            rows, sku, near_rows = await self._postgres(
                query, bounds, depth, trigrams=trigrams, near=near
            )
        else:
            sku = await self._by_sku(query, bounds)
            fuzzy = query.fuzzy and sku is None
            rows = await self._sqlite(query, bounds, depth, fuzzy=fuzzy) if query.terms else []
            near_rows = list((await self.shown(near, filters)).values())
        words, grams, shown = _rank(rows, query, fuzzy=query.fuzzy and sku is None)
        for row in near_rows:
            shown.setdefault(row["id"], row)
        exact = [] if sku is None else [sku["id"]]
        if sku is not None:
            shown.setdefault(sku["id"], sku)
        return Lexical(exact, words, grams, shown, frozenset(near))

    async def _by_sku(self, query: Query, bounds: dict[str, int]) -> Row | None:
        if query.sku is None:
            return None
        return await self.conn.fetchrow(q.BY_SKU, sku=query.sku, **bounds)

    async def _postgres(
        self,
        query: Query,
        bounds: dict[str, int],
        depth: int,
        *,
        trigrams: bool,
        near: Sequence[str],
    ) -> tuple[list[Row], Row | None, list[Row]]:
        """The candidates of the one statement, the product with the query's SKU, and the
        ``near`` products that pass the filters."""
        top, filtered = (
            (q.PG_LEXICAL_TOP, q.PG_LEXICAL_FILTERED) if trigrams else
            (q.PG_WORDS_TOP, q.PG_WORDS_FILTERED)
        )  # fmt: skip
        params = _pg_params(query, bounds, depth, trigrams=trigrams, near=near)
        rows = await self.conn.fetch(top, **params)
        by_words = [r for r in rows if r["words"] is not None]
        by_grams = [r for r in rows if r["similarity"] is not None]
        if _refused_some(by_words, depth) or _refused_some(by_grams, depth):
            rows = await self.conn.fetch(filtered, **params)
            by_words = [r for r in rows if r["words"] is not None]
            by_grams = [r for r in rows if r["similarity"] is not None]
        sku = next((r for r in rows if r["exact"]), None)
        near_rows = [r for r in rows if r["near"] and r["id"] is not None]
        # best first, as SQLite's statements give them (ties by id: the same answer each time)
        by_words.sort(key=lambda r: (-r["words"], r["id"] or ""))
        by_grams.sort(key=lambda r: (-r["similarity"], r["id"] or ""))
        found = [*_passing(by_words, rank="words"), *_passing(by_grams, rank=None)]
        return found, sku, near_rows

    async def _sqlite(
        self, query: Query, bounds: dict[str, int], depth: int, *, fuzzy: bool
    ) -> list[Row]:
        words = q.fts5_words(query.terms)
        found = await self._fts5(q.SQLITE_WORDS_TOP, q.SQLITE_WORDS_FILTERED, words, bounds, depth)
        rows = _passing(found, rank="rank")
        grams = q.fts5_grams(query.terms) if fuzzy and not _named(rows, query, depth) else None
        if grams is not None:
            found = await self._fts5(
                q.SQLITE_GRAMS_TOP, q.SQLITE_GRAMS_FILTERED, grams, bounds, depth
            )
            rows += _passing(found, rank=None)
        return rows

    async def _fts5(
        self, top: Statement, filtered: Statement, match: str, bounds: dict[str, int], depth: int
    ) -> list[Row]:
        rows = await self.conn.fetch(top, match=match, depth=depth, **bounds)
        if _refused_some(rows, depth):
            rows = await self.conn.fetch(filtered, match=match, depth=depth, **bounds)
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
