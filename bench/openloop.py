"""An open-loop load generator: requests sent at a fixed arrival rate, whatever the server does.

A closed loop (wrk: N clients, each waiting for its answer before asking again) slows its own
sending when the server stalls, so the requests that would have arrived during a stall are
never sent and never measured (coordinated omission). Here request ``i`` is due at
``start + i / rate``; it is sent on an idle keep-alive connection (a new one when none is idle)
and its latency is measured from when it was *due*, so time spent queued behind a stall counts.

HTTP/1.1 over raw asyncio streams keeps the generator's own CPU small: it shares the cores with
the server and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

Request = bytes  # a complete HTTP/1.1 request, headers and body


@dataclass
class OpenLoopResult:
    rate: float  # requests per second asked for
    sent: int
    ok: int
    other: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    late_ms: float  # how far the generator itself fell behind its schedule (p99)
    statuses: dict[str, int]  # answers by HTTP status ("0": no answer, connection failed)


def post(path: str, host: str, body: bytes, headers: dict[str, str]) -> Request:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: Request
) -> tuple[int, bool]:
    """Send one request; its status, and whether the connection may be used again (not when
    the server answered ``Connection: close``, as a draining or rebalancing server does)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length, reusable = 0, True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and b"close" in value.lower():
            reusable = False
    await reader.readexactly(length)
    return status, reusable


class _Connections:
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send(self, request: Request) -> int:
        conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = await asyncio.open_connection(self._host, self._port)
        status, reusable = await _exchange(*conn, request)
        if reusable:
            self._idle.append(conn)
        else:
            conn[1].close()
        return status

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()


def _pick(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(base_url: str, requests: list[Request], rate: float) -> OpenLoopResult:
    url = urlsplit(base_url)
    conns = _Connections(url.hostname or "127.0.0.1", url.port or 80)
    latencies: list[float] = []
    late: list[float] = []
    statuses: list[int] = []

    async def one(request: Request, due: float) -> None:
        late.append(time.monotonic() - due)
        try:
            statuses.append(await conns.send(request))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            statuses.append(0)
        latencies.append(time.monotonic() - due)

    start = time.monotonic() + 0.05
    tasks = []
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    conns.close()
    latencies.sort()
    late.sort()
    ok = sum(1 for s in statuses if 200 <= s < 300)
    return OpenLoopResult(
        rate, len(requests), ok, len(statuses) - ok,
        *(1000 * _pick(latencies, q) for q in (0.5, 0.99, 0.999)),
        1000 * latencies[-1] if latencies else float("nan"),
        1000 * _pick(late, 0.99),
        {str(code): statuses.count(code) for code in sorted(set(statuses))},
    )  # fmt: skip


def open_loop(base_url: str, requests: list[Request], rate: float) -> OpenLoopResult:
    """Send ``requests`` at ``rate`` per second; latency from each one's due time."""
    return asyncio.run(_run(base_url, requests, rate))
