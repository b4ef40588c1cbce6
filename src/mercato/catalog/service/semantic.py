"""Search by meaning: products' embeddings, made in the background, and their nearest ones.

Product events ask for an embedding (a row waiting in ``catalog_product_vectors``); the
``search-indexer`` worker embeds waiting products in batches and stores their vectors. Each
process answers "nearest to this text" from a matrix of every vector, kept fresh by reading
the vectors embedded since it last looked (at most once a second, in the background), or, on
PostgreSQL with pgvector, from its HNSW index. Until the model has loaded nothing waits: the
semantic ranking is simply empty and search answers with its lexical half.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from mercato.catalog.domain.search import SEMANTIC_THRESHOLD
from mercato.catalog.store.vector_store import VectorRepository, Waiting, vector_literal
from mercato.kernel.clock import utcnow
from mercato.platform.embedder import DIMENSIONS, BackgroundModel, Matrix
from mercato.platform.outbox import OutboxEvent
from mercato.platform.uow import Transactor, UnitOfWork

T = TypeVar("T")
REFRESH_S = 1.0
IN_LOOP_ROWS = 2048  # below this a scan takes well under a millisecond
_TEXT_FIELDS = frozenset({"name", "description"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class VectorMatrix:
    """Every product's vector as rows of one float32 matrix, grown by doubling."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._data: Matrix = np.zeros((1024, DIMENSIONS), dtype=np.float32)

    def put(self, product_id: str, vector: Matrix) -> None:
        """Add or replace a product's vector."""
        row = self._rows.get(product_id)
        if row is None:
            row = self._rows[product_id] = len(self.ids)
            self.ids.append(product_id)
            if row == len(self._data):
                self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[row] = vector

    def get(self, product_id: str) -> Matrix | None:
        row = self._rows.get(product_id)
        return None if row is None else self._data[row]

    def nearest(self, query: Matrix, depth: int) -> list[tuple[str, float]]:
        """The ``depth`` products most similar to ``query`` (cosine), best first."""
        count = len(self.ids)
        if not count:
            return []
        # einsum, not ``@``: the product is the same, but ``@`` hands it to OpenBLAS, whose
        # threads spin for milliseconds after each one; under load they took more CPU than
        # the searches (a server's CPU per search 20 ms with them, 8 ms without, docs/search.md)
        scores = np.einsum("ij,j->i", self._data[:count], query)
        depth = min(depth, count)
        top = np.argpartition(-scores, depth - 1)[:depth]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top]

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)


class SemanticIndex:
    """The semantic ranking for search, and the indexing that feeds it."""

    def __init__(
        self,
        transact: Transactor,
        model: BackgroundModel,
        *,
        batch: int = 64,
        query_cache: int = 4096,
    ) -> None:
        self._transact = transact
        self.model = model
        self.batch = batch
        # Shoppers repeat queries: the vectors of the most recent ones are kept, so a repeated
        # query costs a matrix product, not a pass through the model (10-20 ms of CPU here).
        self.query_cache = query_cache
        self.matrix = VectorMatrix()
        self.on_requested: Callable[[], None] = lambda: None  # wakes the indexer
        self._seen = _EPOCH
        self._checked = 0.0
        self._refreshing: asyncio.Task[int] | None = None
        self._pgvector: bool | None = None
        self._queries: OrderedDict[str, Matrix] = OrderedDict()

    async def nearest(self, text: str, *, depth: int) -> list[str]:
        """Products nearest in meaning to ``text``; empty while the model or vectors are not
        ready (never waits for them)."""
        if not self.model.ready:
            return []
        found = await self._nearest(await self._query_vector(text), depth)
        return [pid for pid, score in found if score >= SEMANTIC_THRESHOLD]

    async def _query_vector(self, text: str) -> Matrix:
        """The text's embedding, from the cache of recent queries when it is there."""
        cached = self._queries.get(text)
        if cached is not None:
            self._queries.move_to_end(text)
            return cached
        vector: Matrix = (await self.model.embed([text]))[0]
        if self.query_cache:
            self._queries[text] = vector
            if len(self._queries) > self.query_cache:
                self._queries.popitem(last=False)
        return vector

    async def similar(self, product_id: str, *, depth: int) -> list[tuple[str, float]]:
        """Products nearest to this product's own embedding (itself left out)."""
        await self._uses_pgvector()
        vector = self.matrix.get(product_id)
        if vector is None:
            stored = await self._read(lambda r: r.vector(product_id))
            if stored is None:
                return []
            vector = np.frombuffer(stored, dtype=np.float32)
        found = await self._nearest(vector, depth + 1)
        return [(pid, score) for pid, score in found if pid != product_id][:depth]

    async def _nearest(self, query: Matrix, depth: int) -> list[tuple[str, float]]:
        if await self._uses_pgvector():
            literal = vector_literal(query.tolist())
            return await self._read(lambda r: r.pgvector_nearest(literal, depth=depth))
        self._refresh_soon()
        if len(self.matrix.ids) < IN_LOOP_ROWS:
            return self.matrix.nearest(query, depth)
        # a scan of the whole matrix (15 MB at 10,000 products): off the event loop
        return await asyncio.to_thread(self.matrix.nearest, query, depth)

    async def _uses_pgvector(self) -> bool:
        if self._pgvector is None:
            self._pgvector = await self._read(lambda r: r.has_pgvector())
        return self._pgvector

    def _refresh_soon(self) -> None:
        """Read the vectors embedded since the last look, in the background, at most once a
        second."""
        now = time.monotonic()
        if now - self._checked < REFRESH_S or self._refreshing is not None:
            return
        self._checked = now
        self._refreshing = asyncio.get_running_loop().create_task(self.refresh())
        self._refreshing.add_done_callback(lambda _: setattr(self, "_refreshing", None))

    async def close(self) -> None:
        """Let a refresh under way finish (before the database closes)."""
        if self._refreshing is not None:
            await asyncio.gather(self._refreshing, return_exceptions=True)

    async def refresh(self) -> int:
        """Take in the vectors embedded since the last refresh; how many."""
        changed = await self._read(lambda r: r.changed_since(self._seen))
        for product_id, vector, embedded_at in changed:
            self.matrix.put(product_id, np.frombuffer(vector, dtype=np.float32))
            self._seen = max(self._seen, embedded_at)
        return len(changed)

    async def on_product_event(self, event: OutboxEvent) -> None:
        """Outbox subscriber: a new product, or a new name or description, is embedded."""
        if event.event_type == "ProductUpdated":
            if not _TEXT_FIELDS & set(event.payload.get("changed", ())):
                return
        elif event.event_type != "ProductCreated":
            return
        await self.request([event.aggregate_id])

    async def request(self, product_ids: list[str]) -> None:
        """Ask for these products to be embedded, and wake the indexer."""
        now = utcnow()
        await self._transact(lambda uow: _vectors(uow).request(product_ids, now=now))
        self.on_requested()

    async def request_all(self) -> int:
        """Ask for every product to be embedded again; how many wait now."""
        now = utcnow()
        await self._transact(lambda uow: _vectors(uow).request_all(now=now))
        return await self._read(lambda r: r.count_waiting())

    async def index_waiting(self) -> int:
        """Embed one batch of waiting products and store their vectors; how many."""
        waiting = await self._read(lambda r: r.waiting(limit=self.batch))
        if not waiting:
            return 0
        vectors = await self.model.embed([w.text for w in waiting])
        pgvector = await self._uses_pgvector()
        await self._transact(lambda uow: _store(uow, waiting, vectors, pgvector=pgvector))
        return len(waiting)

    async def _read(self, work: Callable[[VectorRepository], Awaitable[T]]) -> T:
        return await self._transact.read(lambda uow: work(_vectors(uow)))


def _vectors(uow: UnitOfWork) -> VectorRepository:
    return uow.repository(VectorRepository)


async def _store(
    uow: UnitOfWork, waiting: list[Waiting], vectors: Matrix, *, pgvector: bool
) -> None:
    now = utcnow()
    repository = _vectors(uow)
    for item, vector in zip(waiting, vectors, strict=True):
        literal = vector_literal(vector.tolist()) if pgvector else None
        await repository.store(item, vector.astype("<f4").tobytes(), now=now, pgvector=literal)


class SearchIndexer:
    """Worker: embeds products waiting for it, a batch at a time."""

    name = "search-indexer"

    def __init__(self, index: SemanticIndex) -> None:
        self.index = index

    async def run_once(self) -> int:
        """One batch (0 when nothing waits: the runner then sleeps)."""
        return await self.index.index_waiting()
