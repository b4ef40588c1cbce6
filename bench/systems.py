"""The four ways of placing an order that ``bench.contention`` compares, measured alike.

* ``pgbench-simple``: pgbench running the lean app's simple order (bench/simple_order.pgbench);
* ``pgbench-mercato``: pgbench running the statements mercato sends (bench/place_order.pgbench);
* ``lean``: bench/lean_app.py (Starlette + raw asyncpg) placing the simple order over HTTP;
* ``mercato``: ``mercato serve`` placing pre-created drafts over HTTP.

Every measurement reports orders per second, latency percentiles, and CPU per order of the
server processes (from /proc) and of the database's backends (:class:`bench.measure.BackendCpu`).
"""

from __future__ import annotations

import glob
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import BENCH, OUT, Served, free_port, need, proc_cpu_seconds, wrk
from bench.measure import BackendCpu

SYSTEMS = ("pgbench-simple", "pgbench-mercato", "lean", "mercato")
BASELINE = "mercato-baseline"  # mercato from another source tree (--baseline-src): before/after
PGBENCH_POOL = 20_000


@dataclass
class Hooks:
    """Where the load's own start and end are marked (a counting proxy notes its counts there)."""

    direct_url: str | None = None  # the database itself, for reading its backends' CPU
    start: Callable[[], None] = lambda: None
    stop: Callable[[], None] = lambda: None


@dataclass
class Measured:
    orders_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float | None  # per order; pgbench has no server
    pg_cpu_ms: float  # per order
    ok: int
    conflict: int
    other: int
    client_cpu_share: float | None = None


def median(rows: list[Measured]) -> dict[str, float | int | None]:
    """Medians of the rates and costs, sums of the counts."""
    out: dict[str, float | int | None] = {}
    for key, value in asdict(rows[0]).items():
        values = [getattr(r, key) for r in rows]
        if value is None or any(v is None for v in values):
            out[key] = None
        elif key in ("ok", "conflict", "other"):
            out[key] = sum(values)
        else:
            out[key] = statistics.median(values)
    return out


def _percentiles(prefix: Path) -> tuple[float, float]:
    latencies: list[int] = []
    for name in glob.glob(f"{prefix}.*"):
        with open(name) as log:
            latencies += [int(line.split()[2]) for line in log if line.strip()]
        os.unlink(name)
    if not latencies:
        return float("nan"), float("nan")
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1000  # noqa: E731
    return pick(0.50), pick(0.99)


def pgbench(
    url: str, script: str, defines: list[str], *, clients: int, duration: int, at: Hooks
) -> Measured:
    """pgbench running one order script; every transaction logged for its percentiles."""
    prefix = OUT / f"pgbench-{script.split('.')[0]}"
    for attempt in range(1, 6):
        cpu = BackendCpu(at.direct_url or url).start()
        at.start()
        done = subprocess.run(
            [need("pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", "2",
             "-T", str(duration), *[f"-D{d}" for d in defines], "-l", f"--log-prefix={prefix}",
             "-f", str(BENCH / script), url],
            capture_output=True, text=True, check=False, timeout=duration + 60,
        )  # fmt: skip
        at.stop()
        pg_cpu = cpu.stop()
        # a PostgreSQL shared with other work may be out of connections for a moment
        if done.returncode == 0 or "too many clients" not in done.stderr or attempt == 5:
            break
        _percentiles(prefix)  # discard the partial logs
        time.sleep(15)
    if done.returncode != 0:
        raise SystemExit(f"bench: pgbench failed:\n{done.stderr.strip()}")
    processed = [line for line in done.stdout.splitlines() if "actually processed" in line]
    count = int(processed[0].split(":")[1].split("/")[0])
    p50, p99 = _percentiles(prefix)
    return Measured(count / duration, p50, p99, None, 1000 * pg_cpu / max(count, 1), count, 0, 0)


def http(
    url: str,
    server: Served,
    script: str,
    args: list[str],
    *,
    clients: int,
    duration: int,
    at: Hooks,
) -> Measured:
    """wrk against a running server, with the server's and the backends' CPU per order."""
    cpu = BackendCpu(at.direct_url or url).start()
    before = proc_cpu_seconds(server.pid)
    at.start()
    result = wrk(server.base_url, BENCH / script, args, clients=clients, duration=duration)
    at.stop()
    server_cpu = proc_cpu_seconds(server.pid) - before
    pg_cpu = cpu.stop()
    orders = max(result.ok, 1)
    return Measured(
        result.ok / duration,
        result.p50_ms,
        result.p99_ms,
        1000 * server_cpu / orders,
        1000 * pg_cpu / orders,
        result.ok,
        result.conflict,
        result.other,
        result.client_cpu_s / (duration * (os.cpu_count() or 1)),
    )


def server_env(url: str, secret: str) -> dict[str, str]:
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
            "MERCATO_TOKEN_SECRET": secret,
            "MERCATO_LOG_LEVEL": "WARNING",
            "MERCATO_RUN_WORKERS": "false",
            "MERCATO_DATABASE_POOL_SIZE": "16",
        }
    )
    env["PYTHONPATH"] = str(BENCH.parent) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def mercato_argv(workers: int) -> list[str]:
    return [sys.executable, "-m", "mercato", "serve", "--port", "{port}",
            "--workers", str(workers)]  # fmt: skip


def lean_argv(workers: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "bench.lean_app:app", "--port", "{port}",
            "--workers", str(workers), "--log-level", "warning", "--no-access-log"]  # fmt: skip


def log(name: str) -> Path:
    OUT.mkdir(exist_ok=True)
    return OUT / name
