"""The open-loop generator keeps sending on schedule through a stall and charges it to every
request that was due during it.

A closed loop with a few clients stops sending while the server stalls, so it reports one slow
request for a server that stops for a second. Here requests keep leaving at the fixed rate (the
sender is never behind its schedule), wait behind the stall, and their latency counts from when
they were due. The server answers one request at a time and stalls on the first.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
from bench.openloop import open_loop, post

STALL_S = 1.0


Answer = Callable[[int], Awaitable[bytes | None]]  # request number -> extra head lines, or None


@contextmanager
def _server(answer: Answer) -> Iterator[str]:
    """A one-file HTTP server in a thread: each request's answer is 200 ``ok`` with the head
    lines ``answer`` returns for its number (counted from 1); a line ``Connection: close`` ends
    the connection after it."""
    port: list[int] = []
    ready, stop = threading.Event(), threading.Event()

    async def main() -> None:
        seen = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal seen
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    await reader.readexactly(length)
                    seen += 1
                    extra = await answer(seen) or b""
                    writer.write(b"HTTP/1.1 200 OK\r\n" + extra + b"Content-Length: 2\r\n\r\nok")
                    await writer.drain()
                    if b"close" in extra.lower():
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        await asyncio.to_thread(stop.wait)
        server.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield f"http://127.0.0.1:{port[0]}"
    finally:
        stop.set()
        thread.join(5)


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """Answers one request at a time and stalls on the first."""
    one_at_a_time = asyncio.Lock()

    async def answer(number: int) -> None:
        async with one_at_a_time:
            if number == 1:
                await asyncio.sleep(STALL_S)

    with _server(answer) as url:
        yield url


def test_requests_due_during_a_stall_are_charged_the_wait(stalling_server: str) -> None:
    host = stalling_server.split("//", 1)[1]
    requests = [post("/x", host, b"{}", {"Content-Type": "application/json"}) for _ in range(50)]
    result = open_loop(stalling_server, requests, rate=50.0)  # all due within the stall
    assert result.ok == 50
    assert result.other == 0
    # due every 20 ms, all answered only after the stall: latencies spread from ~1 s down to
    # ~0.02 s, so the median is about half the stall (a closed loop would report ~0)
    assert result.p50_ms >= 0.35 * STALL_S * 1000, result
    assert result.max_ms >= 0.9 * STALL_S * 1000, result
    assert result.late_ms < 0.2 * STALL_S * 1000, result  # sent when due, not after the stall


def test_a_connection_the_server_closes_is_not_used_again() -> None:
    async def every_other_closes(number: int) -> bytes | None:
        return b"Connection: close\r\n" if number % 2 == 0 else None

    with _server(every_other_closes) as url:
        host = url.split("//", 1)[1]
        result = open_loop(url, [post("/x", host, b"{}", {}) for _ in range(40)], rate=200.0)
    assert result.statuses == {"200": 40}
