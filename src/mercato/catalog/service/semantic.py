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
from numpy.typing import NDArray

from mercato.catalog.domain.search import SEMANTIC_THRESHOLD
from mercato.catalog.store.vector_store import VectorRepository, Waiting, vector_literal
from mercato.kernel.clock import utcnow
from mercato.platform.embedder import DIMENSIONS, BackgroundModel, Matrix
from mercato.platform.outbox import OutboxEvent
from mercato.platform.uow import Transactor, UnitOfWork

T = TypeVar("T")
REFRESH_S = 1.0
IN_LOOP_ROWS = 2048  # below this a scan takes well under a millisecond
# From this many vectors a coarse index answers, probing this share of its lists. An exact
# scan of 10,000 takes about a millisecond, but under 16 clients it was a fifth of the
# server's CPU per search; the coarse index's answers at 10,000 ranked the judged queries
# the same (docs/search.md). 20,000 until 2026-12-06.
COARSE_FROM = 5_000
COARSE_SHARE = 0.075
_PART = 512  # candidate rows copied and scored at a time (768 KB)
_TEXT_FIELDS = frozenset({"name", "description"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class VectorMatrix:
    """Every product's vector as rows of one float32 matrix, grown by doubling; from
    ``coarse_from`` rows on, with a :class:`CoarseIndex` over them (built by
    :meth:`build_coarse`) so a search scores a few of its lists, not every row."""

    def __init__(self, *, coarse_from: int = COARSE_FROM) -> None:
        self.ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._data: Matrix = np.zeros((1024, DIMENSIONS), dtype=np.float32)
        self.coarse_from = coarse_from
        self.coarse: CoarseIndex | None = None

    def put(self, product_id: str, vector: Matrix) -> None:
        """Add or replace a product's vector."""
        row = self._rows.get(product_id)
        if row is None:
            row = self._rows[product_id] = len(self.ids)
            self.ids.append(product_id)
            if row == len(self._data):
                self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        elif self.coarse is not None and row < self.coarse.built:
            self.coarse = self.coarse.moving(row)  # its list may be the wrong one now
        self._data[row] = vector

    def get(self, product_id: str) -> Matrix | None:
        row = self._rows.get(product_id)
        return None if row is None else self._data[row]

    def nearest(self, query: Matrix, depth: int) -> list[tuple[str, float]]:
        """The ``depth`` products most similar to ``query`` (cosine), best first: every row
        scored, or, with a coarse index, the rows of the lists nearest to the query and every
        row put since it was built."""
        count, coarse = len(self.ids), self.coarse
        if not count:
            return []
        data = self._data[:count]
        if coarse is None:
            rows = None
            # einsum, not ``@``: the product is the same, but ``@`` hands it to OpenBLAS, whose
            # threads spin for milliseconds after each one; under load they took more CPU
            # than the searches (a server's CPU per search 20 ms with them, 8 ms without)
            scores = np.einsum("ij,j->i", data, query)
        else:
            rows = coarse.candidates(query, count)
            # a part at a time: one copy of every candidate row (14 MB at 100,000 products)
            # in each of the scan threads grew the server's memory by 165 MB under load
            scores = np.concatenate(
                [
                    np.einsum("ij,j->i", np.take(data, rows[i : i + _PART], axis=0), query)
                    for i in range(0, len(rows), _PART)
                ]
            )
        depth = min(depth, len(scores))
        top = np.argpartition(-scores, depth - 1)[:depth]
        top = top[np.argsort(-scores[top], kind="stable")]
        found = top if rows is None else rows[top]
        return [(self.ids[i], float(s)) for i, s in zip(found, scores[top], strict=True)]

    def needs_coarse(self) -> bool:
        """Whether a coarse index should be (re)built: the matrix has reached
        ``coarse_from`` rows and has none, or a tenth of its rows came or moved since."""
        count = len(self.ids)
        if count < self.coarse_from:
            return False
        coarse = self.coarse
        return coarse is None or (count - coarse.built + len(coarse.moved)) * 10 > coarse.built

    def build_coarse(self) -> None:
        """Build the coarse index over the rows there now (seconds at 100,000: run it off the
        event loop, with nothing put meanwhile), or drop it below ``coarse_from``."""
        count = len(self.ids)
        if count < self.coarse_from:
            self.coarse = None
            return
        self.coarse = CoarseIndex.build(self._data[:count])

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)


class CoarseIndex:
    """An inverted file over a matrix's first ``built`` rows: spherical k-means puts each row
    in the list of its nearest centroid, and a query scores the rows of the ``probes`` lists
    whose centroids are nearest to it, then those put or moved since (exact among them; a
    row whose nearest neighbours sit in lists not probed can be missed, which the recall test
    bounds). About sqrt(rows) lists: at 100,000 rows 316 lists of about 316 rows, and 24
    probed, about 8 % of the rows (docs/search.md)."""

    __slots__ = ("built", "centroids", "lists", "moved", "probes")

    def __init__(
        self, centroids: Matrix, lists: list[NDArray[np.int64]], built: int, probes: int
    ) -> None:
        self.centroids = centroids
        self.lists = lists
        self.built = built
        self.probes = probes
        self.moved: NDArray[np.int64] = np.zeros(0, dtype=np.int64)

    @classmethod
    def build(cls, data: Matrix, *, seed: int = 15, iterations: int = 6) -> CoarseIndex:
        count = len(data)
        lists = max(1, round(count**0.5))
        rng = np.random.default_rng(seed)
        # trained on a sample of 40 rows a list, then every row assigned: at 100,000 rows,
        # a few GFLOP through BLAS (``@`` here: this runs once, off the request path)
        sample = data[np.sort(rng.choice(count, size=min(count, lists * 40), replace=False))]
        centroids = sample[rng.choice(len(sample), size=lists, replace=False)].copy()
        for _ in range(iterations):
            assigned = _assign(sample, centroids)
            order = np.argsort(assigned, kind="stable")
            used, starts = np.unique(assigned[order], return_index=True)
            sums = np.add.reduceat(sample[order], starts, axis=0)
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            centroids[used] = sums / np.maximum(norms, 1e-12)  # empty lists keep theirs
        assigned = _assign(data, centroids)
        order = np.argsort(assigned, kind="stable")
        bounds = np.searchsorted(assigned[order], np.arange(lists + 1))
        members = [order[bounds[i] : bounds[i + 1]].astype(np.int64) for i in range(lists)]
        probes = min(lists, max(8, round(lists * COARSE_SHARE)))
        return cls(centroids, members, count, probes)

    def moving(self, row: int) -> CoarseIndex:
        """A copy that also scores ``row`` always (its vector changed after the build; the
        copy, because searches in threads may be reading this one)."""
        moved = CoarseIndex(self.centroids, self.lists, self.built, self.probes)
        moved.moved = np.union1d(self.moved, [row])
        return moved

    def candidates(self, query: Matrix, count: int) -> NDArray[np.int64]:
        """The rows to score for ``query``, each once, among the first ``count``."""
        near = np.einsum("ij,j->i", self.centroids, query)
        probes = min(self.probes, len(near))
        chosen = np.argpartition(-near, probes - 1)[:probes]
        parts = [self.lists[i] for i in chosen]
        parts.append(np.arange(self.built, count, dtype=np.int64))
        if not len(self.moved):
            return np.concatenate(parts)
        parts.append(self.moved)  # may be in a probed list too: once each
        return np.unique(np.concatenate(parts))


def _assign(data: Matrix, centroids: Matrix, chunk: int = 8192) -> NDArray[np.int64]:
    """The index of each row's nearest centroid (highest dot product)."""
    out = np.empty(len(data), dtype=np.int64)
    for start in range(0, len(data), chunk):
        out[start : start + chunk] = np.argmax(data[start : start + chunk] @ centroids.T, axis=1)
    return out


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

    def answers_at_once(self, text: str) -> bool:
        """Whether :meth:`nearest` would answer without the model or the database: the
        text's vector is cached and this process's matrix (not pgvector) scores it."""
        return self.model.ready and self._pgvector is False and text.lower() in self._queries

    async def _query_vector(self, text: str) -> Matrix:
        """The text's embedding, from the cache of recent queries when it is there. The
        model's tokenizer lower-cases what it reads, so "Kettle" (a phone's keyboard starts
        with a capital) and "kettle" are one embedding, asked for and kept once."""
        text = text.lower()
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
        """Take in the vectors embedded since the last refresh; how many. (Re)build the
        matrix's coarse index when it needs one, off the event loop, before the next
        refresh can put anything."""
        changed = await self._read(lambda r: r.changed_since(self._seen))
        for product_id, vector, embedded_at in changed:
            self.matrix.put(product_id, np.frombuffer(vector, dtype=np.float32))
            self._seen = max(self._seen, embedded_at)
        if self.matrix.needs_coarse():
            await asyncio.to_thread(self.matrix.build_coarse)
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
