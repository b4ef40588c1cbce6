"""Webhook delivery: throughput to a local receiver, and whether healthy endpoints keep their
latency while 10 % of the endpoints are slow or failing.

    make bench-webhooks                          # = .venv/bin/python -m bench.webhooks
    .venv/bin/python -m bench.webhooks --endpoints 40 --rate 1 --duration 30 --burst 60

mercato's webhook dispatcher runs in this process exactly as ``mercato worker`` runs it (the
``WorkerRunner`` loop, the settings' pool of 32 requests, 4 per endpoint, 10 s timeout) on a
PostgreSQL database it recreates (``--database-url``, default ``mercato_bench_webhooks``). The
receiver is another process (``tests/webhook_receiver.py``): ``/ok/N`` answers at once,
``/slow/N`` after ``--slow-s`` seconds, ``/fail/N`` with 500. Each scenario registers its own
endpoints, subscribed to every event, and hands events to the outbox subscriber
(``WebhooksService.on_event``, the relay's fan-out), so every event becomes one delivery per
endpoint.

For two scenarios, *healthy* (every endpoint answers at once: the baseline, measured in the same
run) and *10 % bad* (half of that slow, half failing):

1. **steady**: ``--rate`` events per second for ``--duration`` seconds; the latency of each
   healthy delivery is its arrival at the receiver minus the moment its event was handed over
   (one clock: CLOCK_MONOTONIC is system-wide), p50/p99/max;
2. **burst**: ``--burst`` events fanned out while the dispatcher is stopped, then the time until
   every healthy delivery arrived: deliveries per second.

The ratio bad/healthy of the healthy endpoints' p99 and throughput is the figure that holds on
a shared machine. The receiver's CPU share is reported (it shares the two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.connection
import os
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from tests.webhook_receiver import Behaviour, Receiver

from bench.common import OUT, SECRET, machine, proc_cpu_seconds
from mercato.bootstrap import Container, build
from mercato.config import Settings
from mercato.migrations import migrate
from mercato.platform.outbox import OutboxEvent
from mercato.platform.workers import WorkerRunner

DEFAULT_URL = os.environ.get(
    "MERCATO_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/mercato_bench_webhooks"
)
Paths = dict[str, tuple[int, float]]


# -- the receiver, in its own process --------------------------------------------------------


def receiver_main(conn: multiprocessing.connection.Connection, paths: Paths) -> None:
    asyncio.run(_receive(conn, paths))


async def _receive(conn: multiprocessing.connection.Connection, paths: Paths) -> None:
    receiver = Receiver()
    for path, (status, delay) in paths.items():
        receiver.behaviours[path] = Behaviour(status=status, delay_s=delay)
    await receiver.start()
    conn.send(receiver.port)
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, conn.recv) != "stop":
        taken, receiver.received = receiver.received, []
        conn.send([(r.path, r.at - json.loads(r.body)["data"]["sent"]) for r in taken])
    await receiver.stop()


@dataclass
class Remote:
    """The receiver process and what it reported so far."""

    conn: multiprocessing.connection.Connection
    process: multiprocessing.Process
    port: int
    arrivals: list[tuple[str, float]]

    def collect(self) -> list[tuple[str, float]]:
        self.conn.send("report")
        self.arrivals += self.conn.recv()
        return self.arrivals


def start_receiver(paths: Paths) -> Remote:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=receiver_main, args=(child, paths), daemon=True)
    process.start()
    return Remote(parent, process, parent.recv(), [])


# -- one scenario ------------------------------------------------------------------------------


def paths_for(endpoints: int, slow_s: float) -> tuple[list[str], list[str], Paths]:
    """``endpoints`` healthy paths, the 10 % bad ones (half slow, half failing), and what each
    path answers. The bad scenario swaps the last healthy paths for the bad ones."""
    bad = max(2, endpoints // 10)
    healthy = [f"/ok/{i}" for i in range(endpoints)]
    slow = [f"/slow/{i}" for i in range(bad // 2)]
    failing = [f"/fail/{i}" for i in range(bad - bad // 2)]
    answers: Paths = {p: (200, 0.0) for p in healthy}
    answers |= {p: (200, slow_s) for p in slow} | {p: (500, 0.0) for p in failing}
    return healthy, slow + failing, answers


_SEQ = iter(range(10**12, 10**13))


def event() -> OutboxEvent:
    return OutboxEvent(
        seq=next(_SEQ),
        aggregate_type="bench",
        aggregate_id="01900000-0000-7000-8000-0000000be7c4",
        event_type="ProductUpdated",
        payload={"sent": time.monotonic()},
        occurred_at=datetime.now(UTC),
    )


async def wait_for(remote: Remote, healthy: set[str], count: int, limit_s: float) -> list[float]:
    """Latencies (s) of the healthy arrivals once ``count`` arrived (or ``limit_s`` passed)."""
    deadline = time.monotonic() + limit_s
    while True:
        got = [lat for path, lat in remote.collect() if path in healthy]
        if len(got) >= count or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.1)


async def scenario(
    container: Container, remote: Remote, paths: list[str], healthy: set[str], args: Any
) -> dict[str, Any]:
    made = [
        (
            await container.webhooks.create(
                url=f"http://127.0.0.1:{remote.port}{p}", event_types=["*"]
            )
        ).id
        for p in paths
    ]
    dispatcher = container.dispatcher
    runner = WorkerRunner([dispatcher], idle=0.05)
    dispatcher.wake = container.webhooks.on_enqueued = lambda: runner.wake(dispatcher.name)
    remote.arrivals = []
    runner.start()
    events = await feed(container, args.rate, args.duration)
    steady = await wait_for(remote, healthy, events * len(healthy), 120)
    await runner.stop()
    remote.arrivals = []
    for _ in range(args.burst):
        await container.webhooks.on_event(event())
    started = time.monotonic()
    runner.start()
    burst = await wait_for(remote, healthy, args.burst * len(healthy), 300)
    elapsed = time.monotonic() - started
    await runner.stop()
    for endpoint_id in made:
        await container.webhooks.delete(endpoint_id)
    return summary(steady, events * len(healthy), burst, elapsed, args.burst * len(healthy))


async def feed(container: Container, rate: float, duration: float) -> int:
    """Hand over ``rate`` events a second for ``duration`` seconds; how many."""
    start, sent = time.monotonic(), 0
    while (now := time.monotonic()) - start < duration:
        due = int((now - start) * rate) + 1
        while sent < due:
            await container.webhooks.on_event(event())
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
    return sent


def summary(
    steady: list[float], expected: int, burst: list[float], elapsed: float, burst_expected: int
) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in steady)
    quantiles = statistics.quantiles(ms, n=100) if len(ms) > 1 else ms * 99
    return {
        "steady_delivered": len(ms),
        "steady_expected": expected,
        "p50_ms": round(quantiles[49], 1),
        "p99_ms": round(quantiles[98], 1),
        "max_ms": round(ms[-1], 1) if ms else None,
        "burst_delivered": len(burst),
        "burst_expected": burst_expected,
        "burst_per_s": round(len(burst) / elapsed, 1),
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the runs."""
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


# -- the run -----------------------------------------------------------------------------------


async def recreate(url: str) -> None:
    base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        env="test",  # the receiver is on 127.0.0.1, which staging and production refuse
        database_url=args.database_url,
        token_secret=SECRET,
        run_workers=False,
        log_level="WARNING",
    )
    healthy, bad, answers = paths_for(args.endpoints, args.slow_s)
    kept = healthy[: len(healthy) - len(bad)]
    remote = start_receiver(answers)
    container = build(settings)
    await container.start(workers=False)
    results: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    try:
        cpu, started = proc_cpu_seconds(remote.process.pid or 0), time.monotonic()
        runs: dict[str, list[dict[str, Any]]] = {"healthy": [], "bad_10pct": []}
        for _ in range(args.runs):  # alternating, so drift on the shared machine hits both
            runs["healthy"].append(await scenario(container, remote, healthy, set(healthy), args))
            mixed = await scenario(container, remote, [*kept, *bad], set(kept), args)
            runs["bad_10pct"].append(mixed)
        results["runs"] = runs
        results |= {name: medians(found) for name, found in runs.items()}
        used = proc_cpu_seconds(remote.process.pid or 0) - cpu
        results["receiver_cpu_share"] = round(used / (time.monotonic() - started) / 2, 3)
    finally:
        remote.conn.send("stop")
        remote.process.join(5)
        await container.stop()
    base, bad_run = results["healthy"], results["bad_10pct"]
    results["ratios_bad_over_healthy"] = {
        "p50": round(bad_run["p50_ms"] / base["p50_ms"], 2),
        "p99": round(bad_run["p99_ms"] / base["p99_ms"], 2),
        "burst_per_s": round(bad_run["burst_per_s"] / base["burst_per_s"], 2),
    }
    return results


def report(results: dict[str, Any]) -> None:
    print(f"machine: {results['machine']}")
    print("scenario     healthy deliveries  p50 ms  p99 ms  max ms  burst/s")
    for name in ("healthy", "bad_10pct"):
        r = results[name]
        delivered = f"{r['steady_delivered']}/{r['steady_expected']}"
        print(
            f"{name:<12} {delivered:>18}  {r['p50_ms']:>6}  {r['p99_ms']:>6}  {r['max_ms']:>6}"
            f"  {r['burst_per_s']:>7}"
        )
    print(f"bad/healthy: {results['ratios_bad_over_healthy']}")
    print(f"receiver CPU share of the machine: {results['receiver_cpu_share']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="PostgreSQL; recreated")
    parser.add_argument("--endpoints", type=int, default=40)
    parser.add_argument("--rate", type=float, default=1.0, help="events per second (steady)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (steady)")
    parser.add_argument("--burst", type=int, default=60, help="events (burst)")
    parser.add_argument("--runs", type=int, default=3, help="alternating pairs; medians")
    parser.add_argument("--slow-s", type=float, default=5.0, help="the slow endpoints' answer")
    args = parser.parse_args()
    asyncio.run(recreate(args.database_url))
    migrate.upgrade(args.database_url)
    results = asyncio.run(run(args))
    OUT.mkdir(exist_ok=True)
    (OUT / "webhooks.json").write_text(json.dumps(results, indent=2))
    report(results)


if __name__ == "__main__":
    main()
