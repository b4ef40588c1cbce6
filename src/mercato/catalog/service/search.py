"""Searching products: lexical rankings from the database, a semantic one where it is ready,
fused by reciprocal rank; one page of products read at the end."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mercato.catalog.domain import ProductNotFound
from mercato.catalog.domain.search import (
    CANDIDATES,
    MAX_DEPTH,
    Filters,
    InvalidSearch,
    Query,
    Signal,
    decode_offset,
    encode_offset,
    fuse,
    parse_query,
)
from mercato.catalog.store import Lexical, SearchRepository
from mercato.catalog.store.tables import product_view
from mercato.platform.db import Row
from mercato.platform.uow import Transactor, UnitOfWork


class SemanticRanking(Protocol):
    """Products nearest in meaning to a text; empty until the model and vectors are ready."""

    async def nearest(self, text: str, *, depth: int) -> list[str]: ...

    def answers_at_once(self, text: str) -> bool: ...

    async def similar(self, product_id: str, *, depth: int) -> list[tuple[str, float]]: ...


@dataclass(frozen=True, slots=True)
class Found:
    """One hit of a search page: the product as the API shows it, its score and signals."""

    product: dict[str, object]
    score: float
    signals: list[Signal]


@dataclass(frozen=True, slots=True)
class SearchPage:
    items: list[Found]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Rankings:
    """The rankings a query produced, by signal, its exact SKU match, and the public view's
    columns of every product they hold (they all pass the filters), by id."""

    exact: list[str]
    by_signal: dict[Signal, list[str]]
    rows: dict[str, Row] = field(default_factory=dict)


class ProductSearch:
    """Hybrid product search (docs/search.md)."""

    def __init__(self, transact: Transactor, semantic: SemanticRanking | None = None) -> None:
        self._transact = transact
        self.semantic = semantic
        self._trigrams: bool | None = None

    async def search(
        self, text: str, *, filters: Filters, cursor: str | None, limit: int
    ) -> SearchPage:
        """A page of active products matching ``text``, best first."""
        if not text.strip():
            raise InvalidSearch("q is blank", field="q")
        offset = decode_offset(cursor)
        filters = filters.check()
        query = parse_query(text)
        if query.empty:
            return SearchPage([], None)
        rankings = await self.rankings(query, filters)
        hits = fuse(rankings.by_signal, exact=rankings.exact)
        window = hits[offset : offset + limit]
        rows = rankings.rows
        items = [
            Found(product_view(rows[h.product_id], staff=False), round(h.score, 6), h.signals)
            for h in window
        ]
        more = len(hits) > offset + limit and offset + limit < MAX_DEPTH
        return SearchPage(items, encode_offset(offset + limit) if more else None)

    async def similar(self, product_id: str, *, limit: int) -> SearchPage:
        """Active products nearest in meaning to this one (ProductNotFound if it is not an
        active product); empty until it and its neighbours are embedded."""
        if not await self._shown([product_id], Filters()):
            raise ProductNotFound(product_id)
        found = await self.semantic.similar(product_id, depth=limit) if self.semantic else []
        rows = await self._shown([pid for pid, _ in found], Filters())
        items = [
            Found(product_view(rows[pid], staff=False), round(score, 6), [Signal.SEMANTIC])
            for pid, score in found
            if pid in rows
        ]
        return SearchPage(items, None)

    async def rankings(
        self, query: Query, filters: Filters, *, depth: int = CANDIDATES
    ) -> Rankings:
        """Every signal's ranking of ``query`` (the evaluation compares them one by one).

        One read when the query's vector is cached (a shop's popular queries): the semantic
        candidates first, then the lexical read, which reads their products too (on
        PostgreSQL in its one statement). Otherwise the lexical statements while the model
        embeds the query, then the semantic candidates in a read of their own."""
        if self._trigrams is None:
            self._trigrams = await self._transact.read(
                lambda uow: uow.repository(SearchRepository).has_trigrams()
            )
        if self.semantic is not None and self.semantic.answers_at_once(query.text):
            nearest = await self._nearest(query, depth=depth)
            lexical = await self._lexical(query, filters, depth=depth, near=nearest)
        else:
            lexical, nearest = await asyncio.gather(
                self._lexical(query, filters, depth=depth, near=()),
                self._nearest(query, depth=depth),
            )
        rows = lexical.rows
        by_signal = {Signal.WORDS: lexical.words, Signal.TRIGRAMS: lexical.trigrams}
        if nearest:
            # lexical candidates pass the filters; the ones it looked up were filtered there
            unread = [i for i in nearest if i not in rows and i not in lexical.looked_up]
            if unread:
                rows.update(await self._shown(unread, filters))
            by_signal[Signal.SEMANTIC] = [i for i in nearest if i in rows]
        return Rankings(lexical.exact, by_signal, rows)

    async def _lexical(
        self, query: Query, filters: Filters, *, depth: int, near: Sequence[str]
    ) -> Lexical:
        trigrams = bool(self._trigrams)
        return await self._transact.read(
            lambda uow: uow.repository(SearchRepository).lexical(
                query, filters, depth=depth, trigrams=trigrams, near=near
            )
        )

    async def _nearest(self, query: Query, *, depth: int) -> list[str]:
        """The products nearest in meaning to the query, filters not applied (empty without
        the semantic half)."""
        if self.semantic is None:
            return []
        return await self.semantic.nearest(query.text, depth=depth)

    async def _shown(self, ids: Sequence[str], filters: Filters) -> dict[str, Row]:
        async def read(uow: UnitOfWork) -> dict[str, Row]:
            return await uow.repository(SearchRepository).shown(ids, filters)

        return await self._transact.read(read)
