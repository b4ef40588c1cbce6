"""Order placement under contention and the product read, against PostgreSQL.

    python -m bench.contention [--duration 10] [--runs 3] [--clients 16 64]

For each product distribution (``uniform`` over 10,000 products; ``hot``: 90 % of orders carry
one of 5 products) and each client count, four ways of placing an order run one after another,
alternating their order between runs (bench/systems.py):

* ``pgbench-simple``: pgbench running a simple order (bench/simple_order.pgbench: three guarded
  stock updates, the order, three lines, an outbox row, in one transaction);
* ``pgbench-mercato``: pgbench running the statements mercato sends (bench/place_order.pgbench);
* ``lean``: bench/lean_app.py, Starlette + raw asyncpg, placing the simple order over HTTP;
* ``mercato``: ``mercato serve`` (two worker processes, background workers off so only the
  request path is measured) placing pre-created drafts over HTTP.

Each reports orders/s, p50/p99, and CPU per order of the server processes (/proc) and of the
database's own backends (bench/measure.py). For the first distribution, mercato then runs open
loop at 25/50/80 % of its closed-loop capacity (latency from each request's due time,
bench/openloop.py), and each system runs briefly through a proxy that counts round trips and
statements per order. Afterwards every product is checked: never oversold, and initial stock +
adjustments = available + reserved + sold. Then a product read through mercato is compared with
a bare Starlette + asyncpg endpoint (fresh servers for every run, warmed up first, the order
alternating).
Medians of ``--runs`` runs are printed and written to bench/out/contention.json.
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
from datetime import UTC, datetime

import asyncpg

from bench import systems
from bench.common import (
    BENCH,
    OUT,
    SECRET,
    WrkResult,
    machine,
    need,
    proc_cpu_seconds,
    serve,
    wrk,
)
from bench.placement import RATE, WARMUP_S, Placement, open_loop_rates, round_trips
from mercato.migrations import migrate

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/mercato_bench"


def _psql(url: str, *args: str) -> None:
    subprocess.run([need("psql"), "-q", "-d", url, *args], check=True, capture_output=True)


def recreate(url: str, scenario: str, drafts: int) -> None:
    """A fresh, migrated, seeded and analysed benchmark database."""
    admin = url.rsplit("/", 1)[0] + "/postgres"
    name = url.rsplit("/", 1)[1]
    _psql(
        admin, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", "-c", f"CREATE DATABASE {name}"
    )
    migrate.upgrade(url)
    _psql(
        url,
        "-v",
        f"mercato_orders={drafts}",
        "-v",
        f"pgbench_orders={systems.PGBENCH_POOL}",
        "-v",
        f"mode={scenario}",
        "-f",
        str(BENCH / "seed.sql"),
    )


async def invariants(url: str) -> dict[str, int]:
    """Oversold units and products whose stock does not add up (both must be 0)."""
    conn = await asyncpg.connect(url)
    try:
        negative = await conn.fetchval(
            "SELECT count(*) FROM catalog_products WHERE available < 0 OR reserved < 0 OR sold < 0"
        )
        unbalanced = await conn.fetchval(
            """SELECT count(*) FROM catalog_products p
               JOIN (SELECT product_id, sum(delta) AS total FROM catalog_stock_adjustments
                     GROUP BY product_id) a ON a.product_id = p.id
               WHERE a.total <> p.available + p.reserved + p.sold"""
        )
        placed = await conn.fetchval(
            "SELECT count(*) FROM orders_orders WHERE status = 'placed' AND id LIKE 'd%'"
        )
        captured = await conn.fetchval(
            """SELECT count(*) FROM payments_payments p JOIN orders_orders o ON o.id = p.order_id
               WHERE p.status = 'captured' AND o.id LIKE 'd%'"""
        )
        doubly_charged = await conn.fetchval(
            """SELECT count(*) FROM (SELECT order_id FROM payments_payments
               WHERE status IN ('captured', 'refunded') GROUP BY order_id HAVING count(*) > 1) x"""
        )
    finally:
        await conn.close()
    return {
        "negative_stock": negative,
        "unbalanced_products": unbalanced,
        "placed": placed,
        "captured": captured,
        "doubly_charged": doubly_charged,
    }


def _median(results: list[WrkResult]) -> dict[str, float]:
    return {
        key: statistics.median(getattr(r, key) for r in results)
        for key in ("requests_per_s", "p50_ms", "p99_ms", "client_cpu_s")
    } | {key: sum(getattr(r, key) for r in results) for key in ("ok", "conflict", "other")}


def _line(name: str, m: dict[str, float | int | None]) -> str:
    server = m["server_cpu_ms"]
    return (
        f"    {name:16} {m['orders_per_s']:7.1f}/s"
        f"  p50 {m['p50_ms']:6.1f}  p99 {m['p99_ms']:6.1f} ms"
        f"  server {'   -' if server is None else f'{server:4.2f}'} ms/order"
        f"  PostgreSQL {m['pg_cpu_ms']:4.2f} ms/order  409s {m['conflict']}  errors {m['other']}"
    )


def placement(url: str, scenario: str, args: argparse.Namespace) -> dict[str, object]:
    # every HTTP measurement: its warm-up and its run; the open-loop rates; the counting runs
    servers = 3 if args.baseline_src else 2  # HTTP systems, each taking drafts for every run
    drafts = RATE * (args.duration + WARMUP_S) * (args.runs * len(args.clients) * servers + 6)
    recreate(url, scenario, drafts)
    OUT.mkdir(exist_ok=True)
    bench = Placement(url, scenario, args)
    rows: dict[str, object] = {}
    for clients in args.clients:
        row = bench.compare(clients)
        rows[f"{clients} clients"] = row
        print(f"  {scenario} {clients} clients (medians of {args.runs}):", flush=True)
        for name in bench.systems:
            print(_line(name, row[name]), flush=True)  # type: ignore[arg-type]
        print(
            "    mercato/lean {:.2f}  mercato/pgbench-simple {:.2f}  "
            "mercato/pgbench-mercato {:.2f}".format(
                row["mercato/lean"], row["mercato/pgbench-simple"], row["mercato/pgbench-mercato"]
            ),
            flush=True,
        )
        if systems.BASELINE in row:
            print(f"    mercato/{systems.BASELINE} {row[f'mercato/{systems.BASELINE}']:.2f}")
    if scenario == args.scenarios[0]:
        capacity = rows[f"{args.clients[0]} clients"]["mercato"]["orders_per_s"]  # type: ignore[index]
        rows["open_loop"] = open_loop_rates(bench, capacity)
        rows["round_trips"] = round_trips(bench)
    rows["invariants"] = asyncio.run(invariants(url))
    print(f"  {scenario:7} invariants: {rows['invariants']}", flush=True)
    return rows


def product_read(url: str, args: argparse.Namespace) -> dict[str, object]:
    OUT.mkdir(exist_ok=True)
    ids = OUT / "product-ids.txt"
    ids.write_text("".join(f"b0000000-0000-7000-8000-{n:012d}\n" for n in range(1, 10001)))
    mercato_argv = systems.mercato_argv(args.workers)
    bare_argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--port",
        "{port}",
        "--workers",
        str(args.workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    env = systems.server_env(url, SECRET)
    # name: (argv, environment, readiness path, path prefix of a product)
    servers: dict[str, tuple[list[str], dict[str, str], str, str]] = {
        "mercato": (mercato_argv, env, "/readyz", "/v1/products/"),
        "bare": (bare_argv, env, "/products/b0000000-0000-7000-8000-000000000001", "/products/"),
    }
    if args.baseline_src:
        before = systems.server_env(url, SECRET)  # its own metrics port
        before["PYTHONPATH"] = args.baseline_src + os.pathsep + before["PYTHONPATH"]
        servers[systems.BASELINE] = (mercato_argv, before, "/readyz", "/v1/products/")
    results: dict[str, list[WrkResult]] = {name: [] for name in servers}
    cpu: dict[str, list[float]] = {name: [] for name in servers}
    for number in range(args.runs):
        # Fresh servers every run, each warmed up first: two identical server processes can
        # differ by a few percent for as long as they live, so reusing one pair of servers
        # would repeat one draw of that difference in every run (see bench/observability.py).
        with contextlib.ExitStack() as stack:
            running = {
                name: stack.enter_context(serve(argv, env_, ready, OUT / f"read-{name}.log"))
                for name, (argv, env_, ready, _) in servers.items()
            }
            for name, server in running.items():
                read = [str(ids), servers[name][3]]
                wrk(
                    server.base_url, BENCH / "read.lua", read, clients=args.read_clients, duration=2
                )
            names = list(running)
            order = names[number % len(names) :] + names[: number % len(names)]
            for name in order:
                started = proc_cpu_seconds(running[name].pid)
                result = wrk(
                    running[name].base_url,
                    BENCH / "read.lua",
                    [str(ids), servers[name][3]],
                    clients=args.read_clients,
                    duration=args.duration,
                )
                used = proc_cpu_seconds(running[name].pid) - started
                results[name].append(result)
                cpu[name].append(1000 * used / max(result.ok, 1))
    rps = {
        name: statistics.median(r.requests_per_s for r in runs) for name, runs in results.items()
    }
    summary: dict[str, object] = {
        name: _median(runs) | {"server_cpu_ms": statistics.median(cpu[name])}
        for name, runs in results.items()
    }
    summary["ratio"] = rps["mercato"] / rps["bare"] if rps["bare"] else 0.0
    for name in servers:
        print(
            f"  product read: {name:16} {rps[name]:7.0f}/s  p99 "
            f"{summary[name]['p99_ms']:6.1f} ms  server {statistics.median(cpu[name]):.3f} ms/read"  # type: ignore[index]
            f"  (per run {', '.join(f'{c:.3f}' for c in cpu[name])})",
            flush=True,
        )
    print(f"  product read: mercato/bare {summary['ratio']:.0%}", flush=True)
    if args.baseline_src:
        against = rps["mercato"] / rps[systems.BASELINE]
        summary[f"mercato/{systems.BASELINE}"] = against
        print(f"  product read: mercato/{systems.BASELINE} {against:.2f}", flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.contention",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("MERCATO_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration (median)")
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--read-clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="mercato server processes")
    parser.add_argument(
        "--scenarios",
        nargs="*",
        default=["uniform", "hot"],
        help="product distributions for placement; none: only the product read",
    )
    parser.add_argument(
        "--baseline-src",
        default="",
        help="also measure mercato from this source folder (a checkout's src/), alternating: "
        "before/after figures from the same minutes of a shared machine",
    )
    args = parser.parse_args(argv)
    print(f"machine: {machine()}\n", flush=True)
    report: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "args": vars(args),
    }
    for scenario in args.scenarios:
        report[scenario] = placement(args.database_url, scenario, args)
    if not args.scenarios:
        recreate(args.database_url, "uniform", 1000)  # the products the read needs
    report["product_read"] = product_read(args.database_url, args)
    OUT.mkdir(exist_ok=True)
    (OUT / "contention.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten to {OUT / 'contention.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
