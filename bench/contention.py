"""Order placement under contention and the product read, against PostgreSQL.

    python -m bench.contention [--duration 10] [--runs 3] [--clients 16 64]

For each product distribution (``uniform`` over 10,000 products; ``hot``: 90 % of orders carry
one of 5 products) and each client count, in the same run:

* pgbench executes the statements mercato issues to place an order (bench/place_order.pgbench);
* wrk places pre-created draft orders through mercato's HTTP API (``mercato serve``, two
  worker processes, background workers off so only the request path is measured);

and the ratio mercato/pgbench measures mercato's own overhead. Afterwards every product is
checked: never oversold, and initial stock + adjustments = available + reserved + sold.
Then a product read through mercato is compared with a bare Starlette + asyncpg endpoint (fresh
servers for every run, warmed up first, the order alternating).
Medians of ``--runs`` runs are printed and written to bench/out/contention.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench.common import BENCH, OUT, SECRET, WrkResult, free_port, machine, need, serve, wrk
from mercato.migrations import migrate
from mercato.platform.security import Principal, Role, TokenService

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/mercato_bench"
PGBENCH_POOL = 20_000


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
        f"pgbench_orders={PGBENCH_POOL}",
        "-v",
        f"mode={scenario}",
        "-f",
        str(BENCH / "seed.sql"),
    )


def pgbench(url: str, *, clients: int, duration: int) -> float:
    """Orders per second pgbench places with mercato's statements."""
    done = subprocess.run(
        [
            need("pgbench"),
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(duration),
            "-D",
            f"pool={PGBENCH_POOL}",
            "-f",
            str(BENCH / "place_order.pgbench"),
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=duration + 60,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench: pgbench failed:\n{done.stderr.strip()}")
    for line in done.stdout.splitlines():
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise SystemExit(f"bench: could not read pgbench output:\n{done.stdout}\n{done.stderr}")


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


def server_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MERCATO_")}
    env.update(
        {
            # the production profile: what a shop runs (JSON logs, access log and metrics on)
            "MERCATO_ENV": "production",
            # a benchmark charges test cards: the sandbox, by production's explicit override
            "MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION": "true",
            "MERCATO_SHUTDOWN_DRAIN_S": "0",  # no load balancer to drain from between runs
            "MERCATO_METRICS_PORT": str(free_port()),  # one per server: two may run at once
            "MERCATO_DATABASE_URL": url,
            "MERCATO_TOKEN_SECRET": SECRET,
            "MERCATO_LOG_LEVEL": "WARNING",
            "MERCATO_RUN_WORKERS": "false",
            "MERCATO_DATABASE_POOL_SIZE": "16",
        }
    )
    return env


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


def placement(url: str, scenario: str, args: argparse.Namespace) -> dict[str, object]:
    per_run = 1500 * args.duration
    drafts = per_run * args.runs * len(args.clients)
    recreate(url, scenario, drafts)
    rows: dict[str, object] = {}
    next_draft = 1
    OUT.mkdir(exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "mercato",
        "serve",
        "--port",
        "{port}",
        "--workers",
        str(args.workers),
    ]
    for clients in args.clients:
        pg_runs: list[float] = []
        http_runs: list[WrkResult] = []
        for _ in range(args.runs):
            # pgbench and mercato alternate; the server runs only while it is measured, so that
            # pgbench's 64 connections and mercato's pools never share max_connections
            pg_runs.append(pgbench(url, clients=clients, duration=args.duration))
            work = workfile(OUT / "work.txt", next_draft, per_run)
            next_draft += per_run
            with serve(argv, server_env(url), "/readyz", OUT / f"server-{scenario}.log") as server:
                http_runs.append(
                    wrk(
                        server.base_url,
                        BENCH / "place.lua",
                        [str(work), "2"],
                        clients=clients,
                        duration=args.duration,
                    )
                )
        http = _median(http_runs)
        pg = statistics.median(pg_runs)
        http["orders_per_s"] = statistics.median(
            (r.ok + r.conflict) / args.duration for r in http_runs
        )
        http["client_cpu_share"] = http["client_cpu_s"] / (args.duration * (os.cpu_count() or 1))
        rows[f"{clients} clients"] = {
            "pgbench_orders_per_s": pg,
            "mercato": http,
            "ratio": http["orders_per_s"] / pg if pg else 0.0,
        }
        print(
            f"  {scenario:7} {clients:3} clients: pgbench {pg:7.1f}/s  mercato "
            f"{http['orders_per_s']:7.1f}/s  ratio {rows[f'{clients} clients']['ratio']:.0%}  "  # type: ignore[index]
            f"p50 {http['p50_ms']:.1f} ms  p99 {http['p99_ms']:.1f} ms  "
            f"409s {int(http['conflict'])}  errors {int(http['other'])}",
            flush=True,
        )
    rows["invariants"] = asyncio.run(invariants(url))
    print(f"  {scenario:7} invariants: {rows['invariants']}", flush=True)
    return rows


def product_read(url: str, args: argparse.Namespace) -> dict[str, object]:
    ids = OUT / "product-ids.txt"
    ids.write_text("".join(f"b0000000-0000-7000-8000-{n:012d}\n" for n in range(1, 10001)))
    mercato_argv = [
        sys.executable,
        "-m",
        "mercato",
        "serve",
        "--port",
        "{port}",
        "--workers",
        str(args.workers),
    ]
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
    env = server_env(url)
    env["PYTHONPATH"] = str(BENCH.parent) + os.pathsep + env.get("PYTHONPATH", "")
    results: dict[str, list[WrkResult]] = {"mercato": [], "bare": []}
    paths = {"mercato": "/v1/products/", "bare": "/products/"}
    for number in range(args.runs):
        # Fresh servers every run, each warmed up first: two identical server processes can
        # differ by a few percent for as long as they live, so reusing one pair of servers
        # would repeat one draw of that difference in every run (see bench/observability.py).
        with (
            serve(mercato_argv, env, "/readyz", OUT / "server-read.log") as ours,
            serve(
                bare_argv, env, "/products/b0000000-0000-7000-8000-000000000001", OUT / "bare.log"
            ) as bare,
        ):
            servers = {"mercato": ours, "bare": bare}
            for name, server in servers.items():
                read = [str(ids), paths[name]]
                wrk(
                    server.base_url, BENCH / "read.lua", read, clients=args.read_clients, duration=2
                )
            order = ["mercato", "bare"] if number % 2 == 0 else ["bare", "mercato"]
            for name in order:
                results[name].append(
                    wrk(
                        servers[name].base_url,
                        BENCH / "read.lua",
                        [str(ids), paths[name]],
                        clients=args.read_clients,
                        duration=args.duration,
                    )
                )
    ours_rps = statistics.median(r.requests_per_s for r in results["mercato"])
    bare_rps = statistics.median(r.requests_per_s for r in results["bare"])
    summary = {
        "mercato": _median(results["mercato"]),
        "bare": _median(results["bare"]),
        "ratio": ours_rps / bare_rps if bare_rps else 0.0,
    }
    print(
        f"  product read: mercato {ours_rps:.0f}/s  bare {bare_rps:.0f}/s  "
        f"ratio {summary['ratio']:.0%}  "
        f"p99 {summary['mercato']['p99_ms']:.1f} ms vs {summary['bare']['p99_ms']:.1f} ms",
        flush=True,
    )
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
    parser.add_argument("--scenarios", nargs="+", default=["uniform", "hot"])
    args = parser.parse_args(argv)
    print(f"machine: {machine()}\n", flush=True)
    report: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "args": vars(args),
    }
    for scenario in args.scenarios:
        report[scenario] = placement(args.database_url, scenario, args)
    report["product_read"] = product_read(args.database_url, args)
    OUT.mkdir(exist_ok=True)
    (OUT / "contention.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten to {OUT / 'contention.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
