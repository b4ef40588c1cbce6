"""The placement comparison's moving parts: drafts handed out to runs, the four systems measured
one at a time on fresh servers, mercato at fixed arrival rates, and round trips counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import asyncpg

from bench import systems
from bench.common import BENCH, OUT, SECRET, serve, wrk
from bench.measure import CountingProxy
from bench.openloop import open_loop, post
from mercato.platform.security import Principal, Role, TokenService

WARMUP_S = 2
RATE = 1000  # drafts set aside per second of an HTTP run (mercato stays well below)
OPEN_LOOP_SHARES = (0.25, 0.5, 0.8)
PLACE_BODY = b'{"card_number":"4242424242424242"}'


def workfile(path: Path, first: int, count: int) -> Path:
    """Draft ids first..first+count-1 with their owners' tokens, one per line."""
    tokens = TokenService(SECRET, ttl_s=24 * 3600)
    lines = []
    for n in range(first, first + count):
        customer = f"c0000000-0000-7000-8000-{1 + n % 64:012d}"
        token, _ = tokens.issue(Principal(customer, Role.CUSTOMER))
        lines.append(f"d0000000-0000-7000-8000-{n:012d} {token}")
    path.write_text("\n".join(lines) + "\n")
    return path


async def _draft_lines(url: str, first: int, count: int) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT o.customer_id, array_agg(l.product_id ORDER BY l.position) AS products
               FROM orders_orders o JOIN orders_lines l ON l.order_id = o.id
               WHERE o.id BETWEEN $1 AND $2 GROUP BY o.id, o.customer_id ORDER BY o.id""",
            f"d0000000-0000-7000-8000-{first:012d}",
            f"d0000000-0000-7000-8000-{first + count - 1:012d}",
        )
    finally:
        await conn.close()
    return [" ".join([row["customer_id"], *row["products"]]) for row in rows]


async def vacuum(url: str) -> None:
    """Every run starts from a vacuumed database, as autovacuum keeps a shop's: the runs before
    left dead rows behind (each placement updates stock, orders, payments and reservations), and
    a PostgreSQL with autovacuum off (as this machine's is, conf.d/90-ci.conf) would otherwise
    make each run pay for all the runs before it, whatever system it measures."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


def lean_workfile(url: str, path: Path, first: int, count: int) -> Path:
    """Customer and products of drafts first..first+count-1: the lean app's simple orders."""
    path.write_text("\n".join(asyncio.run(_draft_lines(url, first, count))) + "\n")
    return path


class Placement:
    """Runs the four systems of bench.systems against one seeded scenario."""

    def __init__(self, url: str, scenario: str, args: argparse.Namespace) -> None:
        self.url, self.scenario, self.args = url, scenario, args
        self.per_run = RATE * args.duration
        self.next_draft = 1
        self.at = systems.Hooks(direct_url=url)
        self.systems = systems.SYSTEMS + ((systems.BASELINE,) if args.baseline_src else ())

    def drafts(self, count: int) -> int:
        first = self.next_draft
        self.next_draft += count
        return first

    def measure(self, system: str, clients: int) -> systems.Measured:
        args, url = self.args, self.url
        asyncio.run(vacuum(self.at.direct_url or url))
        if system.startswith("pgbench"):
            script = "simple_order.pgbench" if system == "pgbench-simple" else "place_order.pgbench"
            defines = [f"hot={int(self.scenario == 'hot')}", f"pool={systems.PGBENCH_POOL}"]
            return systems.pgbench(
                url, script, defines, clients=clients, duration=args.duration, at=self.at
            )
        env = systems.server_env(url, SECRET)
        if system == systems.BASELINE:
            env["PYTHONPATH"] = args.baseline_src + os.pathsep + env["PYTHONPATH"]
        if system == "lean":
            argv, ready, script = systems.lean_argv(args.workers), "/ready", "lean.lua"
        else:
            argv, ready, script = systems.mercato_argv(args.workers), "/readyz", "place.lua"
        with serve(argv, env, ready, systems.log(f"server-{system}.log")) as server:
            # a fresh server is warmed up first (connections opened, code paths run once)
            warm = self.work(system, RATE * WARMUP_S)
            wrk(server.base_url, BENCH / script, [str(warm), "2"], clients=clients,
                duration=WARMUP_S)  # fmt: skip
            return systems.http(
                url, server, script, [str(self.work(system, self.per_run)), "2"],
                clients=clients, duration=args.duration, at=self.at,
            )  # fmt: skip

    def work(self, system: str, count: int) -> Path:
        """The next ``count`` drafts: to place (mercato), or whose products to order (lean)."""
        first = self.drafts(count)
        if system == "lean":
            return lean_workfile(self.at.direct_url or self.url, OUT / "lean.txt", first, count)
        return workfile(OUT / "work.txt", first, count)

    def compare(self, clients: int) -> dict[str, object]:
        runs: dict[str, list[systems.Measured]] = {name: [] for name in self.systems}
        for number in range(self.args.runs):
            # alternate the order, so no system always meets the same moment of a shared machine;
            # only one runs at a time, so their connections never share max_connections
            order = self.systems if number % 2 == 0 else tuple(reversed(self.systems))
            for name in order:
                runs[name].append(self.measure(name, clients))
        row: dict[str, object] = {name: systems.median(rows) for name, rows in runs.items()}
        ours = statistics.median(r.orders_per_s for r in runs["mercato"])
        for name in ("lean", "pgbench-simple", "pgbench-mercato", systems.BASELINE):
            if name not in runs:
                continue
            theirs = statistics.median(r.orders_per_s for r in runs[name])
            row[f"mercato/{name}"] = ours / theirs if theirs else 0.0
        row["mercato/lean per run"] = [
            m.orders_per_s / lean.orders_per_s if lean.orders_per_s else 0.0
            for m, lean in zip(runs["mercato"], runs["lean"], strict=True)
        ]
        return row


def open_loop_rates(bench: Placement, capacity: float) -> dict[str, dict[str, float]]:
    """mercato at fixed arrival rates (shares of its closed-loop capacity), on one fresh server."""
    results: dict[str, dict[str, float]] = {}
    env = systems.server_env(bench.url, SECRET)
    argv = systems.mercato_argv(bench.args.workers)
    with serve(argv, env, "/readyz", systems.log("server-open-loop.log")) as server:
        warm = bench.work("mercato", RATE * WARMUP_S)
        wrk(server.base_url, BENCH / "place.lua", [str(warm), "2"], clients=16, duration=WARMUP_S)
        host = server.base_url.split("//", 1)[1]
        for share in OPEN_LOOP_SHARES:
            rate = share * capacity
            count = int(rate * bench.args.duration)
            lines = bench.work("mercato", count).read_text().split()
            requests = [
                post(f"/v1/orders/{order}/place", host, PLACE_BODY,
                     {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
                for order, token in zip(lines[::2], lines[1::2], strict=True)
            ]  # fmt: skip
            measured = open_loop(server.base_url, requests, rate)
            results[f"{share:.0%}"] = asdict(measured)
            print(
                f"  open loop at {share:.0%} of {capacity:.0f}/s = {rate:.0f}/s: "
                f"p50 {measured.p50_ms:.1f}  p99 {measured.p99_ms:.1f}  "
                f"p99.9 {measured.p999_ms:.1f} ms  (statuses {measured.statuses}, "
                f"sender behind schedule p99 {measured.late_ms:.1f} ms)",
                flush=True,
            )
    return results


def _marker(proxy: CountingProxy, marks: list[tuple[int, int]]) -> Callable[[], None]:
    return lambda: marks.append(proxy.counts.snapshot())


def round_trips(bench: Placement) -> dict[str, dict[str, float]]:
    """Round trips and statements per order of each system, counted by a proxy to PostgreSQL.

    A short run at 4 clients per system, its database URL pointing at the proxy; only traffic
    between the start and the end of the load counts (not server start-up or readiness checks).
    """
    port = int(bench.url.rsplit(":", 1)[1].split("/", 1)[0])
    counted: dict[str, dict[str, float]] = {}
    original, duration = bench.url, bench.args.duration
    bench.args.duration = 3
    try:
        for name in bench.systems:
            with CountingProxy(port) as proxy:
                marks: list[tuple[int, int]] = []
                bench.url = original.replace(f":{port}/", f":{proxy.port}/")
                bench.at = systems.Hooks(original, _marker(proxy, marks), _marker(proxy, marks))
                measured = bench.measure(name, 4)
            orders = max(measured.ok, 1)
            trips, statements = (after - before for before, after in zip(*marks, strict=True))
            counted[name] = {
                "orders": measured.ok,
                "round_trips_per_order": trips / orders,
                "statements_per_order": statements / orders,
            }
            print(
                f"  {name:16} {trips / orders:5.1f} round trips, {statements / orders:5.1f}"
                f" statements per order ({measured.ok} orders through a counting proxy)",
                flush=True,
            )
    finally:
        bench.url, bench.args.duration = original, duration
        bench.at = systems.Hooks(direct_url=original)
    return counted
