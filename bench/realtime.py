"""Held connections on one mercato process: memory each, wake-up latency, other requests.

    .venv/bin/python -m bench.realtime --database-url postgresql://postgres@127.0.0.1:5432/DB

For each kind of held connection (``longpoll``: ``GET /v1/orders/{id}?wait=300`` with the
current ``If-None-Match``; ``stream``: ``GET /v1/orders/{id}/events`` with ``Last-Event-ID``)
and each size (1,000 / 5,000 / 10,000 by default), against a fresh ``mercato serve`` process
(one worker, background workers on, as deployed):

1. warm up (open and close 200 held connections, a few reads), then read the server's resident
   memory (VmRSS), open N held connections from this process (raw asyncio sockets, not an HTTP
   library), wait until the server's CPU is quiet, read VmRSS again: (after - before) / N;
2. while they are held, read ``/livez`` and ``GET /v1/products/{id}`` one at a time on another
   connection (500 each, every 20 ms, which spans at least one round of 15 s heartbeats) and
   report p50/p99;
3. a separate process changes every held order once (``confirm``, then ``ship`` for the next
   kind), 16 transactions at a time, and notes when each commit returned; this process notes
   when each client received its answer or event. Latency = receipt - commit (one clock:
   CLOCK_MONOTONIC is system-wide). The changes reach the server only through PostgreSQL
   NOTIFY, the path between replicas.

The baseline, measured in the same run for the same sizes: ``bench/realtime_baseline.py``, a bare
FastAPI app whose endpoint awaits an event (long poll) or returns a ``StreamingResponse``
(stream). The database is migrated and filled with orders (never dropped); the machine is shared
with PostgreSQL and this load generator, whose CPU is reported next to the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import BENCH, OUT, free_port

ROOT = BENCH.parent
SECRET = "bench-realtime-secret-0123456789-abcdefgh"
DEFAULT_URL = os.environ.get(
    "MERCATO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/mercato_bench"
)
CARD = "4242 4242 4242 4242"
EVENT_OF = {"confirm": b"OrderConfirmed", "ship": b"OrderShipped", "deliver": b"OrderDelivered"}
ACTIONS = ["confirm", "ship", "deliver"]  # the n-th kind run on the same orders does the n-th


# -- processes ------------------------------------------------------------------------------------


def raise_open_files() -> int:
    """Raise this process's (and its children's) open-file limit to the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict[str, str]:
    def run(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        except OSError:
            return ""

    lscpu = "\n".join(run("lscpu").splitlines()[:20])
    return {"nproc": run("nproc").strip(), "free": run("free", "-h"), "lscpu": lscpu}


class Server:
    """A server process on a free port, with its log in bench/out."""

    def __init__(self, argv: list[str], env: dict[str, str], name: str) -> None:
        self.port = free_port()
        OUT.mkdir(exist_ok=True)
        self.log = OUT / f"realtime-{name}-{self.port}.log"
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    async def ready(self, path: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, _ = await request(self.port, path)
                if status == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        raise SystemExit(f"server did not start; see {self.log}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def mercato_server(url: str) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MERCATO_")}
    env.update(
        MERCATO_ENV="production",  # what a shop runs: JSON logs, access log and metrics on
        MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION="true",  # test cards, never real money
        MERCATO_METRICS_PORT=str(free_port()),  # not 9100, which another server may hold
        MERCATO_DATABASE_URL=url,
        MERCATO_TOKEN_SECRET=SECRET,
        MERCATO_LOG_LEVEL="WARNING",
        MERCATO_REALTIME_MAX_WAITING="20000",
        MERCATO_REALTIME_MAX_WAIT_S="300",
    )
    argv = [sys.executable, "-m", "mercato", "serve", "--port", "{port}", "--workers", "1"]
    return Server(argv, env, "mercato")


def baseline_server() -> Server:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.realtime_baseline:app",
        "--port",
        "{port}",
        "--log-level",
        "warning",
    ]
    return Server(argv, dict(os.environ), "baseline")


# -- raw HTTP -------------------------------------------------------------------------------------


async def request(port: int, path: str) -> tuple[int, bytes]:
    """One GET on a new connection (for readiness checks)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()
        return int(data.split(b" ", 2)[1]), data
    finally:
        writer.close()


class Prober:
    """Sequential GETs on one keep-alive connection, each timed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> float:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        started = time.perf_counter()
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await self.reader.readexactly(length)
        elapsed = time.perf_counter() - started
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{path}: {head[:40]!r}")
        return elapsed

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass(eq=False)
class Held:
    """One held connection on the client side."""

    order_id: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    received_at: float | None = None
    status: int | None = None
    task: asyncio.Task[None] | None = None


async def open_held(
    port: int, requests: Sequence[tuple[str, bytes]], *, kind: str, event: bytes
) -> list[Held]:
    """Open one connection per request, 256 at a time; streams are open once `retry:` arrives."""
    gate = asyncio.Semaphore(256)

    async def one(order_id: str, raw: bytes) -> Held:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            held = Held(order_id, reader, writer)
            seen = b""
            if kind == "stream":
                while b"retry:" not in seen:
                    chunk = await reader.read(4096)
                    if not chunk:
                        raise RuntimeError("stream closed while opening")
                    seen += chunk
                held.status = int(seen.split(b" ", 2)[1])
        held.task = asyncio.create_task(watch(held, kind=kind, event=event, seen=seen))
        return held

    return list(await asyncio.gather(*(one(order_id, raw) for order_id, raw in requests)))


async def watch(held: Held, *, kind: str, event: bytes, seen: bytes) -> None:
    """Note when the answer (long poll) or the awaited event (stream) arrives."""
    try:
        if kind == "longpoll":
            head = await held.reader.readuntil(b"\r\n\r\n")
            held.received_at = time.monotonic()
            held.status = int(head.split(b" ", 2)[1])
            return
        buffer = b""
        marker = b"event: " + event
        while marker not in buffer:
            chunk = await held.reader.read(65536)
            if not chunk:
                return
            buffer = buffer[-64:] + chunk
        held.received_at = time.monotonic()
    except (OSError, asyncio.IncompleteReadError):
        return


def close_all(held: list[Held]) -> None:
    for h in held:
        if h.task is not None:
            h.task.cancel()
        h.writer.close()


async def settle(pid: int, *, quiet_s: float = 1.0, within: float = 120.0) -> None:
    """Wait until the server has used (almost) no CPU for ``quiet_s``."""
    deadline = time.monotonic() + within
    last = cpu_s(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet_s)
        now = cpu_s(pid)
        if now - last < 0.03 * quiet_s:
            return
        last = now


# -- the fixture: orders to hold ------------------------------------------------------------------


@dataclass
class Fixture:
    token: str
    staff_id: str
    product_id: str
    orders: list[tuple[str, int]]
    last_seq: int


async def seed(url: str, count: int) -> Fixture:
    """One customer with ``count`` placed orders of one product, and a staff account."""
    from mercato.bootstrap import build
    from mercato.config import Settings
    from mercato.customers import Role
    from mercato.kernel.values import Address
    from mercato.orders import NewLine
    from mercato.platform import event_log
    from mercato.platform.security import Principal
    from mercato.platform.security import Role as TokenRole

    settings = Settings(
        database_url=url,
        token_secret=SECRET,
        argon2_time_cost=1,
        argon2_memory_kib=8,
        run_workers=False,
        database_pool_size=20,
        token_ttl_s=24 * 3600,
    )
    container = build(settings)
    await container.start(workers=False)
    try:
        tag = f"{time.time_ns():x}"
        staff = await container.customers.register(
            email=f"bench-staff-{tag}@example.com",
            password="bench password",
            name="Bench staff",
            role=Role.STAFF,
        )
        account = await container.customers.register(
            email=f"bench-{tag}@example.com", password="bench password", name="Bench"
        )
        owner = Principal(account.id, TokenRole.CUSTOMER)
        product = await container.catalog.create_product(
            actor_id=staff.id,
            sku=f"BENCH-{tag}".upper(),
            name="Bench product",
            description="",
            price_amount=1000,
            currency="EUR",
            weight_grams=100,
            initial_stock=count,
        )
        address = Address(street="Hauptstrasse 1", city="Berlin", country="DE")

        async def one() -> tuple[str, int]:
            draft = await container.orders.create(
                owner, lines=[NewLine(product.id, 1)], shipping_address=address
            )
            placed = await container.orders.place(owner, draft.id, card_number=CARD)
            return placed.id, placed.version

        orders: list[tuple[str, int]] = []
        for start in range(0, count, 40):
            orders += await asyncio.gather(*(one() for _ in range(min(40, count - start))))
        async with container.db.connection() as conn:
            await conn.execute_text("ANALYZE")
        return Fixture(
            token=container.tokens.issue(owner)[0],
            staff_id=staff.id,
            product_id=product.id,
            orders=orders,
            last_seq=await event_log.last_seq(container.db),
        )
    finally:
        await container.stop()


def held_requests(
    kind: str, fixture: Fixture, orders: Sequence[tuple[str, int]]
) -> list[tuple[str, bytes]]:
    auth = f"Authorization: Bearer {fixture.token}\r\n"
    requests = []
    for order_id, version in orders:
        if kind == "longpoll":
            line = f"GET /v1/orders/{order_id}?wait=300 HTTP/1.1\r\n"
            extra = f'If-None-Match: "{version}"\r\n'
        else:
            line = f"GET /v1/orders/{order_id}/events HTTP/1.1\r\n"
            extra = f"Last-Event-ID: {fixture.last_seq}\r\n"
        requests.append((order_id, f"{line}Host: bench\r\n{auth}{extra}\r\n".encode()))
    return requests


# -- the change burst, in its own process ---------------------------------------------------------


async def commit_burst(
    url: str, staff_id: str, action: str, ids: list[str], concurrency: int
) -> dict[str, dict[str, float]]:
    """Run in a child process: apply ``action`` to every order, noting each commit's time."""
    from mercato.bootstrap import build
    from mercato.config import Settings
    from mercato.platform.security import Principal, Role

    settings = Settings(
        database_url=url, token_secret=SECRET, run_workers=False, database_pool_size=concurrency
    )
    container = build(settings)
    await container.start(workers=False)
    clerk = Principal(staff_id, Role.STAFF)
    change = getattr(container.orders, action)
    committed: dict[str, float] = {}
    asked: dict[str, float] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for order_id in ids:
        queue.put_nowait(order_id)

    def note(events: list[Any]) -> None:  # runs right after COMMIT returns
        now = time.monotonic()
        for event in events:
            committed.setdefault(event.aggregate_id, now)

    container.transact.after_commit(note)

    async def worker() -> None:
        while not queue.empty():
            order_id = queue.get_nowait()
            asked[order_id] = time.monotonic()
            await change(clerk, order_id)

    # warm the pool before the burst: connections are made lazily
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(container.db.ping())
    print("ready", flush=True)
    sys.stdin.readline()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    await container.stop()
    return {"committed": committed, "asked": asked}


def committer_main(args: argparse.Namespace) -> int:
    ids = json.loads(Path(args.ids).read_text())
    committed = asyncio.run(
        commit_burst(args.database_url, args.staff_id, args.action, ids, args.concurrency)
    )
    Path(args.out).write_text(json.dumps(committed))
    return 0


async def burst(
    url: str, fixture: Fixture, action: str, held: list[Held], server_pid: int
) -> dict[str, Any]:
    """Change every held order from another process; latency from commit to receipt."""
    OUT.mkdir(exist_ok=True)
    ids_file, out_file = OUT / "burst-ids.json", OUT / "burst-commits.json"
    ids_file.write_text(json.dumps([h.order_id for h in held]))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.realtime",
        "--commit",
        "--database-url",
        url,
        "--staff-id",
        fixture.staff_id,
        "--action",
        action,
        "--ids",
        str(ids_file),
        "--out",
        str(out_file),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    assert (await child.stdout.readline()).strip() == b"ready"
    server_cpu, client_cpu, started = cpu_s(server_pid), own_cpu_s(), time.monotonic()
    child.stdin.write(b"go\n")
    await child.stdin.drain()
    if await child.wait() != 0:
        raise SystemExit("the burst process failed")
    times: dict[str, dict[str, float]] = json.loads(out_file.read_text())
    committed, asked = times["committed"], times["asked"]
    last_commit = max(committed.values())
    deadline = last_commit + 30
    waiting = [h for h in held if h.task is not None and h.received_at is None]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            await asyncio.gather(*(h.task for h in waiting if h.task is not None))
    # From the change's start (a conservative bound: it includes the transaction itself) and
    # from the return of its COMMIT (which the server may beat: NOTIFY leaves at commit).
    latencies = sorted(
        (h.received_at - asked[h.order_id]) * 1000
        for h in held
        if h.received_at is not None and h.order_id in asked
    )
    after_commit = sorted(
        (h.received_at - committed[h.order_id]) * 1000
        for h in held
        if h.received_at is not None and h.order_id in committed
    )
    ended = max((h.received_at or 0.0 for h in held), default=last_commit)
    wall = max(ended, last_commit) - started
    return {
        "changes": len(committed),
        "received": len(latencies),
        "missing": len(held) - len(latencies),
        "non_200": sum(1 for h in held if h.status not in (None, 200)),
        "commit_s": round(last_commit - min(committed.values()), 3),
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "max_ms": round(latencies[-1], 1) if latencies else None,
        "from_commit_p50_ms": round(percentile(after_commit, 50), 1) if after_commit else None,
        "from_commit_p99_ms": round(percentile(after_commit, 99), 1) if after_commit else None,
        "server_cpu_s": round(cpu_s(server_pid) - server_cpu, 2),
        "client_cpu_s": round(own_cpu_s() - client_cpu, 2),
        "wall_s": round(wall, 2),
    }


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


# -- one run --------------------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    kind: str
    held: int
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    kb_per_connection: float = 0.0
    open_s: float = 0.0
    probes: dict[str, dict[str, float]] = field(default_factory=dict)
    burst: dict[str, Any] = field(default_factory=dict)
    load_average: float = 0.0  # of the machine (1 min) when the run ended: the neighbours


async def measure_memory(
    server: Server,
    run: Run,
    requests: list[tuple[str, bytes]],
    warm: list[tuple[str, bytes]],
    event: bytes,
) -> list[Held]:
    warmed = await open_held(server.port, warm, kind=run.kind, event=event)
    close_all(warmed)
    await asyncio.sleep(1)
    await settle(server.pid)
    run.rss_before_kb = rss_kb(server.pid)
    started = time.monotonic()
    held = await open_held(server.port, requests, kind=run.kind, event=event)
    await settle(server.pid)
    run.open_s = round(time.monotonic() - started, 1)
    run.rss_after_kb = rss_kb(server.pid)
    run.kb_per_connection = round((run.rss_after_kb - run.rss_before_kb) / len(requests), 1)
    return held


async def probe(
    server: Server, paths: list[str], *, count: int, interval: float
) -> dict[str, dict[str, float]]:
    prober = Prober(server.port)
    timings: dict[str, list[float]] = {p: [] for p in paths}
    try:
        for path in paths:
            await prober.get(path)  # warm
        for _ in range(count):
            for path in paths:
                timings[path].append(await prober.get(path) * 1000)
                await asyncio.sleep(interval)
    finally:
        prober.close()
    return {
        path: {
            "p50_ms": round(percentile(sorted(t), 50), 2),
            "p99_ms": round(percentile(sorted(t), 99), 2),
        }
        for path, t in timings.items()
    }


async def mercato_run(
    url: str,
    kind: str,
    size: int,
    fixture: Fixture,
    orders: list[tuple[str, int]],
    probes: int,
    action: str,
) -> Run:
    run = Run("mercato", kind, size)
    server = mercato_server(url)
    held: list[Held] = []
    try:
        await server.ready("/readyz")
        warm = held_requests(kind, fixture, fixture.orders[-200:])
        held = await measure_memory(
            server, run, held_requests(kind, fixture, orders), warm, EVENT_OF[action]
        )
        # This process's own full collections (it holds 10,000 sockets too) would delay the
        # receipt times it notes: keep what it holds out of the collector while measuring.
        gc.collect()
        gc.freeze()
        product = f"/v1/products/{fixture.product_id}"
        run.probes = await probe(server, ["/livez", product], count=probes, interval=0.02)
        run.burst = await burst(url, fixture, action, held, server.pid)
        run.load_average = round(os.getloadavg()[0], 1)
    finally:
        gc.unfreeze()
        close_all(held)
        server.stop()
    return run


async def baseline_run(kind: str, size: int) -> Run:
    run = Run("baseline", kind, size)
    server = baseline_server()
    held: list[Held] = []

    def reqs(n: int, offset: int = 0) -> list[tuple[str, bytes]]:
        path = "/lp/{}?wait=300" if kind == "longpoll" else "/sse?{}"
        return [
            (str(i), f"GET {path.format(i)} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            for i in range(offset, offset + n)
        ]

    try:
        await server.ready("/docs")
        held = await measure_memory(server, run, reqs(size, 1000), reqs(200), b"never")
    finally:
        close_all(held)
        server.process.kill()
        server.process.wait()
    return run


# -- main -----------------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None


def report(runs: list[Run]) -> str:
    """A Markdown table: the median of the repeats of each kind and size."""
    groups: dict[tuple[str, str, int], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.server, r.kind, r.held), []).append(r)
    lines = [
        "| kind | held | runs | KB/conn (baseline, ratio) | /livez p50/p99 ms "
        "| product p50/p99 ms | burst s | wake-up p50/p99/max ms | (from COMMIT p50/p99) "
        "| missing | server CPU s | load-gen CPU s | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (server, kind, held), repeats in groups.items():
        if server != "mercato":
            continue
        memory = _median([r.kb_per_connection for r in repeats])
        base = _median([r.kb_per_connection for r in groups.get(("baseline", kind, held), [])])
        ratio = f" ({base}, {memory / base:.2f}x)" if base and memory else ""
        probes = sorted(repeats[0].probes, key=lambda path: path != "/livez")
        cells = [
            "/".join(str(_median([r.probes[p][q] for r in repeats])) for q in ("p50_ms", "p99_ms"))
            for p in probes
        ]

        def burst(key: str, repeats: list[Run] = repeats) -> str:
            return str(_median([r.burst.get(key) for r in repeats]))

        lines.append(
            f"| {kind} | {held:,} | {len(repeats)} | {memory}{ratio} | {' | '.join(cells)} "
            f"| {burst('commit_s')} | {burst('p50_ms')}/{burst('p99_ms')}/{burst('max_ms')} "
            f"| {burst('from_commit_p50_ms')}/{burst('from_commit_p99_ms')} "
            f"| {sum(r.burst.get('missing', 0) for r in repeats)} "
            f"| {burst('server_cpu_s')} | {burst('client_cpu_s')} "
            f"| {_median([r.load_average for r in repeats])} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> list[Run]:
    sizes = sorted(args.sizes)
    needed = sum(sizes) * args.runs + 200
    print(f"seeding {needed:,} placed orders ...", flush=True)
    started = time.monotonic()
    fixture = await seed(args.database_url, needed)
    print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
    runs: list[Run] = []
    for repeat in range(args.runs):
        for number, kind in enumerate(args.kinds):
            # every kind of one repeat runs on the same orders, the next action each time
            offset = repeat * sum(sizes)
            for size in sizes:
                orders = fixture.orders[offset : offset + size]
                offset += size
                if not args.no_baseline:
                    runs.append(await baseline_run(kind, size))
                    print(json.dumps(asdict(runs[-1])), flush=True)
                run = await mercato_run(
                    args.database_url, kind, size, fixture, orders, args.probes, ACTIONS[number]
                )
                runs.append(run)
                print(json.dumps(asdict(run)), flush=True)
                changed = {order_id for order_id, _ in orders}
                fixture.orders = [
                    (order_id, version + (order_id in changed))
                    for order_id, version in fixture.orders
                ]
                fixture.last_seq = await last_seq(args.database_url)
    return runs


async def last_seq(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT coalesce(max(seq), 0) FROM platform_outbox"))
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.realtime", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--database-url", default=DEFAULT_URL, help="PostgreSQL to fill (never dropped)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument(
        "--kinds", nargs="+", choices=["longpoll", "stream"], default=["longpoll", "stream"]
    )
    parser.add_argument("--probes", type=int, default=500, help="reads of each probe path")
    parser.add_argument("--runs", type=int, default=1, help="repeats (medians are reported)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--commit", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--staff-id", help=argparse.SUPPRESS)
    parser.add_argument("--action", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=16, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.commit:
        return committer_main(args)
    limit = raise_open_files()
    if limit < max(args.sizes) + 1000:
        raise SystemExit(f"open-file limit {limit} is too low for {max(args.sizes)} connections")
    about = machine()
    print(f"nproc {about['nproc']}\n{about['free']}{about['lscpu']}\n", flush=True)
    from mercato.migrations import migrate

    migrate.upgrade(args.database_url)
    runs = asyncio.run(main_async(args))
    OUT.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"realtime-{stamp}.json").write_text(
        json.dumps({"machine": about, "runs": [asdict(r) for r in runs]}, indent=2)
    )
    print(report(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
