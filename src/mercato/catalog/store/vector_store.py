"""Products' embeddings on the unit of work: what waits to be embedded, what was, and the
nearest neighbours where pgvector answers them (migration 0010)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mercato.platform.db import sql
from mercato.platform.uow import Repository

# ON CONFLICT ... DO UPDATE reads the same on both databases; the SELECT's WHERE true keeps
# SQLite from taking ON CONFLICT for a join clause.
_REQUEST = sql(
    sa.text(
        "INSERT INTO catalog_product_vectors (product_id, requested_at) VALUES (:id, :now) "
        "ON CONFLICT (product_id) DO UPDATE SET vector = NULL, requested_at = :now"
    )
)
_REQUEST_ALL = sql(
    sa.text(
        "INSERT INTO catalog_product_vectors (product_id, requested_at) "
        "SELECT id, :now FROM catalog_products WHERE true "
        "ON CONFLICT (product_id) DO UPDATE SET vector = NULL, requested_at = :now"
    )
)
# Oldest requests first, in the order of the partial index on requested_at alone: a tiebreak
# on product_id made PostgreSQL sort every waiting row per batch (200 ms a batch with 100,000
# products asked for at once by a reindex, against 1 ms).
_PENDING = sql(
    sa.text(
        "SELECT v.product_id, v.requested_at, p.name, p.sku, p.description "
        "FROM catalog_product_vectors AS v JOIN catalog_products AS p ON p.id = v.product_id "
        "WHERE v.vector IS NULL ORDER BY v.requested_at LIMIT :limit"
    ).columns(requested_at=sa.DateTime(timezone=True))
)
_COUNT_PENDING = sql(sa.text("SELECT count(*) FROM catalog_product_vectors WHERE vector IS NULL"))
# Guarded by the request it answers: a product changed again meanwhile waits for its new text.
# Not also by "vector IS NULL": that let PostgreSQL pick the partial index of waiting rows,
# which after a reindex holds every product under one requested_at and was scanned whole for
# each row stored (0.9 s a batch of 64 at 100,000 products), instead of the primary key.
_STORE = sql(
    sa.text(
        "UPDATE catalog_product_vectors SET vector = :vector, embedded_at = :now "
        "WHERE product_id = :id AND requested_at = :requested"
    )
)
_PGVECTOR_STORE = sql(
    sa.text(
        "INSERT INTO catalog_search_pgvector (product_id, embedding) "
        "VALUES (:id, CAST(:embedding AS vector)) "
        "ON CONFLICT (product_id) DO UPDATE SET embedding = excluded.embedding"
    )
)
_CHANGED = sql(
    sa.text(
        "SELECT product_id, vector, embedded_at FROM catalog_product_vectors "
        "WHERE embedded_at > :since AND vector IS NOT NULL ORDER BY embedded_at"
    ).columns(embedded_at=sa.DateTime(timezone=True))
)
_VECTOR = sql(
    sa.text(
        "SELECT vector FROM catalog_product_vectors WHERE product_id = :id AND vector IS NOT NULL"
    )
)
_HAS_PGVECTOR = sql(sa.text("SELECT to_regclass('catalog_search_pgvector') IS NOT NULL"))
# HNSW answers at most hnsw.ef_search (40) rows, which is the depth of the semantic ranking
_PGVECTOR_NEAREST = sql(
    sa.text(
        "SELECT product_id, 1 - (embedding <=> CAST(:embedding AS vector)) AS similarity "
        "FROM catalog_search_pgvector ORDER BY embedding <=> CAST(:embedding AS vector) "
        "LIMIT :depth"
    )
)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A product waiting for its embedding: the text to embed and the request it answers."""

    product_id: str
    requested_at: datetime
    text: str


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


class VectorRepository(Repository):
    """The ``catalog_product_vectors`` statements, and ``catalog_search_pgvector``'s."""

    __slots__ = ()

    async def request(self, product_ids: Sequence[str], *, now: datetime) -> None:
        """Ask for these products to be embedded (again)."""
        for product_id in product_ids:
            await self.conn.execute(_REQUEST, id=product_id, now=now)

    async def request_all(self, *, now: datetime) -> None:
        """Ask for every product to be embedded again."""
        await self.conn.execute(_REQUEST_ALL, now=now)

    async def waiting(self, *, limit: int) -> list[Waiting]:
        """The products longest waiting for an embedding, with their text."""
        rows = await self.conn.fetch(_PENDING, limit=limit)
        return [
            Waiting(r["product_id"], r["requested_at"], f"{r['name']}. {r['description']}")
            for r in rows
        ]

    async def count_waiting(self) -> int:
        """How many products wait for an embedding."""
        return int(await self.conn.fetchval(_COUNT_PENDING))

    async def store(
        self, waiting: Waiting, vector: bytes, *, now: datetime, pgvector: str | None
    ) -> bool:
        """Keep a product's embedding (and in pgvector's table, given its text form); False
        when the product was asked for again meanwhile (its new text will be embedded)."""
        stored = await self.conn.execute(
            _STORE, id=waiting.product_id, requested=waiting.requested_at, vector=vector, now=now
        )
        if stored and pgvector is not None:
            await self.conn.execute(_PGVECTOR_STORE, id=waiting.product_id, embedding=pgvector)
        return stored == 1

    async def changed_since(self, since: datetime) -> list[tuple[str, bytes, datetime]]:
        """Embeddings made after ``since``, oldest first."""
        rows = await self.conn.fetch(_CHANGED, since=since)
        return [(r["product_id"], bytes(r["vector"]), r["embedded_at"]) for r in rows]

    async def vector(self, product_id: str) -> bytes | None:
        """A product's embedding, if it has one."""
        found = await self.conn.fetchval(_VECTOR, id=product_id)
        return bytes(found) if found is not None else None

    async def has_pgvector(self) -> bool:
        """Whether this database keeps the vectors in pgvector too (migration 0010)."""
        if self.conn.dialect != "postgresql":
            return False
        return bool(await self.conn.fetchval(_HAS_PGVECTOR))

    async def pgvector_nearest(self, embedding: str, *, depth: int) -> list[tuple[str, float]]:
        """Products nearest to ``embedding`` (pgvector's text form) by cosine, via HNSW, with
        their cosine similarity."""
        rows = await self.conn.fetch(_PGVECTOR_NEAREST, embedding=embedding, depth=depth)
        return [(r["product_id"], float(r["similarity"])) for r in rows]
