"""``mercato loadcheck``: a short, bounded load test with pass/fail thresholds.

The pipeline runs it against staging after the smoke test: ``concurrency`` clients browse the
catalog (a page of products, then one product) for ``duration`` seconds. It fails when the
error ratio or the 95th percentile latency passes its threshold, or when nothing was served.
Read-only, so it is safe against any environment.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import TextIO

import httpx


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def total(self) -> int:
        return len(self.latencies_ms) + sum(self.errors.values())

    def percentile(self, q: int) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else 0.0
        return statistics.quantiles(self.latencies_ms, n=100)[q - 1]


async def _client(http: httpx.AsyncClient, tally: Tally, until: float) -> None:
    ids: list[str] = []
    while time.monotonic() < until:
        path = f"/v1/products/{random.choice(ids)}" if ids and random.random() < 0.5 else None
        started = time.perf_counter()
        try:
            answer = await http.get(path or "/v1/products", params=None if path else {"limit": 20})
        except httpx.HTTPError as exc:
            tally.error(type(exc).__name__)
            continue
        took = (time.perf_counter() - started) * 1000
        if answer.status_code != 200:
            tally.error(f"HTTP {answer.status_code}")
            continue
        tally.latencies_ms.append(took)
        if path is None:
            ids = [p["id"] for p in answer.json().get("items", [])] or ids


async def measure(
    base_url: str, *, duration: float, concurrency: int, request_timeout: float
) -> Tally:
    """Run the load for ``duration`` seconds and tally what came back."""
    tally = Tally()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=request_timeout, limits=limits) as http:
        until = time.monotonic() + duration
        await asyncio.gather(*(_client(http, tally, until) for _ in range(concurrency)))
    return tally


def run_loadcheck(
    base_url: str,
    *,
    out: TextIO,
    duration: float = 30.0,
    concurrency: int = 10,
    max_error_ratio: float = 0.01,
    max_p95_ms: float = 500.0,
    timeout: float = 10.0,
) -> bool:
    """Run the load test and print its report; whether it met the thresholds."""
    started = time.monotonic()
    tally = asyncio.run(
        measure(base_url, duration=duration, concurrency=concurrency, request_timeout=timeout)
    )
    elapsed = time.monotonic() - started
    served = len(tally.latencies_ms)
    ratio = (tally.total - served) / tally.total if tally.total else 1.0
    p95 = tally.percentile(95)
    print(
        f"load check of {base_url}: {concurrency} clients for {duration:g} s\n"
        f"  {tally.total} requests, {served / elapsed:.1f}/s served, errors {ratio:.2%} "
        f"{tally.errors or ''}\n"
        f"  latency p50 {tally.percentile(50):.0f} ms, p95 {p95:.0f} ms, "
        f"p99 {tally.percentile(99):.0f} ms",
        file=out,
    )
    problems = []
    if not served:
        problems.append("nothing was served")
    if ratio > max_error_ratio:
        problems.append(f"error ratio {ratio:.2%} above {max_error_ratio:.2%}")
    if p95 > max_p95_ms:
        problems.append(f"p95 {p95:.0f} ms above {max_p95_ms:g} ms")
    print("passed" if not problems else "FAILED: " + "; ".join(problems), file=out)
    return not problems
