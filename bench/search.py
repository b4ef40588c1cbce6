"""Search speed: latency under 16 clients at 10k and 100k products, and indexing throughput.

    .venv/bin/python -m bench.search [--sizes 10000 100000] [--databases sqlite postgres]
        [--clients 16] [--duration 20]

For each database and catalog size: a fresh database (SQLite in a temporary folder;
PostgreSQL `mercato_search_bench`, dropped and made again) gets `demo-data --catalog N`
(seed 15), its embeddings, and ANALYZE; then a real `mercato serve` (one process, the model
loaded) answers GET /v1/products/search from 16 concurrent clients for --duration seconds,
cycling through the 62 queries of bench/search_judgments.toml, once with the server's cache of
query vectors ("repeated": after the warm-up every query's vector is cached) and once with it
off ("unseen": every query goes through the model). Reported for each: requests/s, p50 and p99
latency, the server's resident memory; and the size of the vector matrix it holds.

Embeddings: the first 10,000 products are embedded by the real indexer path (the search
worker's batches: read waiting products, embed, store), which gives the indexing throughput;
product i of a larger catalog is stored with the vector of product i mod 10,000 (embedding
100,000 products would take ten minutes here and the latency of scoring does not depend on
the vectors' values). Results are printed and written to bench/out/search.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
import tomllib
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tests.conftest import make_settings, running
from tests.e2e.server import running_server

from mercato.catalog.store.vector_store import VectorRepository, Waiting
from mercato.cli import catalog
from mercato.kernel.clock import utcnow
from mercato.migrations import migrate
from mercato.platform.uow import Transactor, UnitOfWork

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql://postgres@127.0.0.1:5432/mercato_search_bench"
OUT = Path(__file__).parent / "out"
REAL = 10_000
JUDGMENTS = Path(__file__).parent / "search_judgments.toml"
QUERIES = [q["q"] for q in tomllib.loads(JUDGMENTS.read_text())["query"]]


def fresh(database: str, folder: Path, size: int) -> str:
    if database == "sqlite":
        url = f"sqlite:///{folder}/bench-{size}.db"
    else:
        for statement in ("DROP DATABASE IF EXISTS", "CREATE DATABASE"):
            command = f"{statement} mercato_search_bench"
            subprocess.run(["psql", PG_ADMIN, "-qc", command], check=True)
        url = PG_URL
    migrate.upgrade(url)
    return url


async def _store_copies(transact: Transactor, vectors: np.ndarray) -> None:
    """Store one of the real vectors (chosen by the product id) for every product still
    waiting: the indexer's store step without the model (see the module docstring)."""
    while True:
        waiting = await transact.read(lambda uow: _vectors(uow).waiting(limit=2000))
        if not waiting:
            return

        async def work(uow: UnitOfWork, waiting: list[Waiting] = waiting) -> None:
            now, repository = utcnow(), _vectors(uow)
            for item in waiting:
                vector = vectors[zlib.crc32(item.product_id.encode()) % len(vectors)]
                await repository.store(item, vector.tobytes(), now=now, pgvector=None)

        await transact(work)


def _vectors(uow: UnitOfWork) -> VectorRepository:
    return uow.repository(VectorRepository)


async def load(url: str, size: int) -> dict[str, float]:
    """The catalog, its embeddings (the first REAL by the model), ANALYZE; indexing figures."""
    settings = make_settings(url, search_semantic=True, search_batch=64)
    async with running(settings) as container:
        started = time.monotonic()
        for batch in catalog.batches(size):
            await container.catalog.import_products(batch, actor_id="bench")
        loaded = time.monotonic() - started
        index = container.semantic
        assert index is not None
        await index.model.loaded()
        await index.request_all()
        started, embedded = time.monotonic(), 0
        while embedded < min(size, REAL) and (done := await index.index_waiting()):
            embedded += done
        seconds = time.monotonic() - started
        await index.refresh()
        vectors = np.stack([index.matrix.get(pid) for pid in index.matrix.ids])
        await _store_copies(container.transact, vectors)
        if url.startswith("postgresql"):
            async with container.db.connection() as conn:
                await conn.execute_text("ANALYZE")
    return {"load_s": loaded, "indexed": embedded, "index_per_s": embedded / seconds}


async def _client(http: httpx.AsyncClient, until: float, offset: int, out: list[float]) -> None:
    i = offset
    while time.monotonic() < until:
        q = QUERIES[i % len(QUERIES)]
        i += 1
        started = time.perf_counter()
        answer = await http.get("/v1/products/search", params={"q": q, "limit": 10})
        out.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text


async def hammer(base: str, clients: int, duration: float) -> dict[str, float]:
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        for _ in range(600):  # until the model has loaded and the matrix is in
            hit = (await http.get("/v1/products/search", params={"q": "thermos"})).json()
            if hit["items"] and "semantic" in hit["items"][0]["signals"]:
                break
            await asyncio.sleep(0.5)
        for q in QUERIES:  # warm every query's statements once
            await http.get("/v1/products/search", params={"q": q})
        times: list[float] = []
        until = time.monotonic() + duration
        await asyncio.gather(*(_client(http, until, i * 5, times) for i in range(clients)))
    times.sort()
    return {
        "requests_per_s": len(times) / duration,
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": times[int(len(times) * 0.99)] * 1000,
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(database: str, size: int, clients: int, duration: float, folder: Path) -> dict[str, Any]:
    """One catalog, searched twice: with the server's cache of query vectors (the 62 queries
    repeat, as shoppers' do) and without it (every query goes through the model)."""
    url = fresh(database, folder, size)
    indexing = asyncio.run(load(url, size))
    result: dict[str, Any] = {"database": database, "products": size, **indexing}
    for name, cache in (("repeated", "4096"), ("unseen", "0")):
        env = {"MERCATO_SEARCH_SEMANTIC": "true", "MERCATO_RUN_WORKERS": "false",
               "MERCATO_SEARCH_QUERY_CACHE": cache}  # fmt: skip
        with running_server(url, folder, **env) as server:
            latency = asyncio.run(hammer(server.base_url, clients, duration))
            result[name] = {**latency, "rss_mb": rss_mb(server.process.pid)}
    return {**result, "matrix_mb": size * 384 * 4 / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            for database in args.databases:
                result = run(database, size, args.clients, args.duration, Path(folder))
                print(json.dumps(result), flush=True)
                results.append(result)
    OUT.mkdir(exist_ok=True)
    (OUT / "search.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
