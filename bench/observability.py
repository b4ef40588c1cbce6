"""What metrics and request logs cost: the same server with them on and off, in the same run.

    python -m bench.observability [--duration 10] [--runs 5] [--clients 32] [--control] [--gc]

Two ``mercato serve`` servers (two worker processes each, so metrics run in prometheus-client's
multiprocess mode as in production) share one seeded PostgreSQL database:

* **on**: ``/metrics`` and every request counted and timed, one JSON access-log line per
  request written to a file (``MERCATO_LOG_FORMAT=json``, level INFO);
* **off**: ``MERCATO_METRICS_ENABLED=false`` and ``MERCATO_ACCESS_LOG=false``.

Each run starts the servers afresh and measures, alternating which goes first, a product read (``GET
/v1/products/{id}``, random ids) and order placement (``POST /v1/orders/{id}/place`` of
pre-created drafts) with wrk. Reported: throughput on/off (medians, and the median of the
paired per-run ratios), server CPU per request on/off, and wrk's CPU share of the machine.
The overhead (1 - on/off) must stay under 5 %; the exit status says whether it did.

``--control`` adds a second *off* server (how far apart two identical servers measure);
``--gc`` adds *on* with Python's default garbage-collector settings instead of the policy
``mercato serve`` applies (:class:`mercato.web.serve.GcPolicy`), to show what that policy is worth.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime

from bench.common import BENCH, OUT, Served, WrkResult, machine, proc_cpu_seconds, serve, wrk
from bench.contention import DEFAULT_URL, recreate, server_env, workfile

LIMIT = 0.05
PYTHON_GC = {"MERCATO_GC_FREEZE": "false", "MERCATO_GC_THRESHOLD": "700"}  # Python's defaults
POOL = {"MERCATO_DATABASE_POOL_SIZE": "8"}  # three servers of two processes stay under 100
CONFIGS = {
    "on": {"MERCATO_LOG_FORMAT": "json", "MERCATO_LOG_LEVEL": "INFO", **POOL},
    "off": {"MERCATO_METRICS_ENABLED": "false", "MERCATO_ACCESS_LOG": "false", **POOL},
}


def measure(
    server: Served, script: str, args: list[str], *, clients: int, duration: int
) -> dict[str, float]:
    """One wrk run, with the server's CPU seconds per answered request."""
    before = proc_cpu_seconds(server.pid)
    result: WrkResult = wrk(
        server.base_url, BENCH / script, args, clients=clients, duration=duration
    )
    cpu = proc_cpu_seconds(server.pid) - before
    answered = result.requests_per_s * duration
    placed = script == "place.lua"
    return {
        "per_s": (result.ok + result.conflict) / duration if placed else result.requests_per_s,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "server_cpu_ms_per_request": 1000 * cpu / answered if answered else 0.0,
        "client_cpu_share": result.client_cpu_s / (duration * (os.cpu_count() or 1)),
        "errors": float(result.other),
    }


def run(args: argparse.Namespace) -> dict[str, object]:
    configs = dict(CONFIGS)
    if args.control:  # a second "off" server: how far apart two identical servers measure
        configs["control"] = CONFIGS["off"]
    if args.gc:  # "on" with Python's own collector settings: what the GC policy is worth
        configs["python-gc"] = CONFIGS["on"] | PYTHON_GC
    per_run = 1500 * args.duration
    recreate(args.database_url, "uniform", per_run * args.runs * len(configs))
    OUT.mkdir(exist_ok=True)
    ids = OUT / "product-ids.txt"
    ids.write_text("".join(f"b0000000-0000-7000-8000-{n:012d}\n" for n in range(1, 10001)))
    argv = [sys.executable, "-m", "mercato", "serve", "--port", "{port}", "--workers", "2"]
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {"read": [], "place": []} for name in configs
    }
    next_draft = 1
    for number in range(args.runs):
        # Fresh servers every run: two identical server processes can differ by a few percent
        # for as long as they live (hash seeds, memory layout), so the same pair of servers in
        # every run would repeat one draw of that difference instead of averaging it out.
        with ExitStack() as stack:
            servers = {
                name: stack.enter_context(
                    serve(
                        argv,
                        server_env(args.database_url) | extra,
                        "/readyz",
                        OUT / f"server-observability-{name}.log",
                    )
                )
                for name, extra in configs.items()
            }
            for name in configs:  # FastAPI prepares each route on its first requests
                measure(
                    servers[name],
                    "read.lua",
                    [str(ids), "/v1/products/"],
                    clients=args.clients,
                    duration=2,
                )
            order = list(configs) if number % 2 == 0 else list(reversed(configs))
            for name in order:
                samples[name]["read"].append(
                    measure(
                        servers[name],
                        "read.lua",
                        [str(ids), "/v1/products/"],
                        clients=args.clients,
                        duration=args.duration,
                    )
                )
            for name in order:
                work = workfile(OUT / f"work-{name}.txt", next_draft, per_run)
                next_draft += per_run
                samples[name]["place"].append(
                    measure(
                        servers[name],
                        "place.lua",
                        [str(work), "2"],
                        clients=args.clients,
                        duration=args.duration,
                    )
                )
        print(
            f"  run {number + 1}/{args.runs}: "
            + "  ".join(
                f"{w} {n} {samples[n][w][-1]['per_s']:.0f}/s"
                for w in ("read", "place")
                for n in configs
            ),
            flush=True,
        )
    return {workload: summarise(samples, workload) for workload in ("read", "place")}


def summarise(
    samples: dict[str, dict[str, list[dict[str, float]]]], workload: str
) -> dict[str, object]:
    on, off = samples["on"][workload], samples["off"][workload]

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    paired = [a["per_s"] / b["per_s"] for a, b in zip(on, off, strict=True) if b["per_s"]]
    summary: dict[str, object] = {
        "on_per_s": median(on, "per_s"),
        "off_per_s": median(off, "per_s"),
        "ratio_of_medians": median(on, "per_s") / median(off, "per_s"),
        "median_paired_ratio": statistics.median(paired),
        "paired_ratios": paired,
        "on_cpu_ms_per_request": median(on, "server_cpu_ms_per_request"),
        "off_cpu_ms_per_request": median(off, "server_cpu_ms_per_request"),
        "on_p99_ms": median(on, "p99_ms"),
        "off_p99_ms": median(off, "p99_ms"),
        "client_cpu_share": median(on + off, "client_cpu_share"),
        "errors": sum(r["errors"] for r in on + off),
    }
    summary["overhead"] = 1 - float(summary["median_paired_ratio"])  # type: ignore[arg-type]
    if "control" in samples:
        control = samples["control"][workload]
        summary["control_paired_ratio"] = statistics.median(
            a["per_s"] / b["per_s"] for a, b in zip(control, off, strict=True) if b["per_s"]
        )
        summary["control_cpu_ms_per_request"] = median(control, "server_cpu_ms_per_request")
    if "python-gc" in samples:
        plain = samples["python-gc"][workload]
        summary["python_gc_paired_ratio"] = statistics.median(
            a["per_s"] / b["per_s"] for a, b in zip(plain, on, strict=True) if b["per_s"]
        )
        summary["python_gc_cpu_ms_per_request"] = median(plain, "server_cpu_ms_per_request")
        summary["python_gc_p99_ms"] = median(plain, "p99_ms")
    return summary


def micro(requests: int = 20_000, rounds: int = 9) -> dict[str, float]:
    """CPU microseconds the middleware adds per request around a trivial app, in-process.

    No network, database or load generator: a figure that the machine's noise barely moves,
    to read next to the server measurements. Multiprocess metrics, JSON access log to a
    discarded stream, log writer thread included (process CPU time covers every thread).
    """
    import asyncio
    import io
    import tempfile

    # multiprocess metrics as in the servers; the variable must not leak into them
    previous = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")
    from mercato.platform import logging as mlog
    from mercato.platform.instrumentation import InstrumentationMiddleware
    from mercato.platform.metrics import Metrics

    mlog.configure(level="INFO", fmt="json", stream=io.StringIO())
    route = type("Route", (), {"path_format": "/v1/products/{product_id}"})()

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        scope["route"] = route
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    async def ignore(message: object) -> None:
        return None

    async def run(enabled: bool) -> float:
        metrics = Metrics()
        wrapped = InstrumentationMiddleware(
            app, openapi=dict, metrics=metrics, count_requests=enabled, access_log=enabled
        )
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/v1/products/b0000000-0000-7000",
            "headers": [],
            "state": {"request_id": "0123456789abcdef0123456789abcdef"},
        }
        started = time.process_time()
        for n in range(requests):
            await wrapped(dict(scope), ignore, ignore)
            if n % 5000 == 0:
                metrics.flush()
        metrics.flush()
        return (time.process_time() - started) / requests * 1e6

    offs, ons = [], []
    for _ in range(rounds):  # alternating: the machine's drift reaches both alike
        offs.append(asyncio.run(run(False)))
        ons.append(asyncio.run(run(True)))
    off, on = statistics.median(offs), statistics.median(ons)
    mlog.shutdown()
    if previous is None:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = previous
    return {"off_us": off, "on_us": on, "added_us": on - off}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.observability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("MERCATO_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--runs", type=int, default=5, help="paired runs (median)")
    parser.add_argument("--clients", type=int, default=32, help="wrk connections")
    parser.add_argument(
        "--control", action="store_true", help="also measure a second 'off' server (A/A noise)"
    )
    parser.add_argument(
        "--gc",
        action="store_true",
        help="also measure 'on' with Python's default garbage-collector settings",
    )
    args = parser.parse_args(argv)
    print(f"machine: {machine()}\n", flush=True)
    added = micro()
    print(
        f"  middleware alone: {added['added_us']:.1f} us CPU per request "
        f"({added['on_us']:.1f} on, {added['off_us']:.1f} off)\n",
        flush=True,
    )
    results = run(args)
    within = True
    for workload, summary in results.items():
        overhead = float(summary["overhead"])  # type: ignore[arg-type]
        within &= overhead < LIMIT
        print(
            f"  {workload:5}: on {summary['on_per_s']:7.0f}/s  off {summary['off_per_s']:7.0f}/s"
            f"  on/off {summary['median_paired_ratio']:.3f} (overhead {overhead:+.1%})"
            f"  CPU/request {summary['on_cpu_ms_per_request']:.3f} vs "
            f"{summary['off_cpu_ms_per_request']:.3f} ms"
            f"  p99 {summary['on_p99_ms']:.1f} vs {summary['off_p99_ms']:.1f} ms"
            f"  wrk CPU {summary['client_cpu_share']:.0%}  errors {summary['errors']:.0f}"
            + (
                f"  control/off {summary['control_paired_ratio']:.3f}"
                if "control_paired_ratio" in summary
                else ""
            ),
            flush=True,
        )
        if "python_gc_paired_ratio" in summary:
            print(
                f"         Python's default GC vs mercato's policy (both on): throughput "
                f"{summary['python_gc_paired_ratio']:.3f}, CPU/request "
                f"{summary['python_gc_cpu_ms_per_request']:.3f} vs "
                f"{summary['on_cpu_ms_per_request']:.3f} ms, p99 "
                f"{summary['python_gc_p99_ms']:.1f} vs {summary['on_p99_ms']:.1f} ms",
                flush=True,
            )
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "args": vars(args),
        "limit": LIMIT,
        "results": results,
        "middleware_alone": added,
    }
    (OUT / "observability.json").write_text(json.dumps(report, indent=2, default=str))
    print(
        f"\n{'within' if within else 'OVER'} the {LIMIT:.0%} limit; "
        f"written to {OUT / 'observability.json'}"
    )
    return 0 if within else 1


if __name__ == "__main__":
    raise SystemExit(main())
