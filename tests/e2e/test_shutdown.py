"""Graceful shutdown of a real ``mercato serve`` under continuous load.

A terminating pod must: fail readiness at once, keep serving through the drain delay, stop
listening, finish what is in flight, and exit 0. A second signal or the grace deadline forces
the exit. These tests drive real processes (one worker, and the multi-worker supervisor) with
real HTTP clients; every loop is bounded in time.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, start_server, wait_ready

pytestmark = pytest.mark.anyio

DRAIN_S = 3.0
PASSWORD = "correct horse battery"


@dataclass
class Outcome:
    kind: str  # ok | refused | reset | failed
    started: float
    ended: float
    detail: str = ""


@dataclass
class Record:
    requests: list[Outcome] = field(default_factory=list)
    readiness: list[tuple[float, int | str]] = field(default_factory=list)

    def first_refusal(self) -> float:
        times = [o.ended for o in self.requests if o.kind == "refused"]
        times += [t for t, status in self.readiness if status == "refused"]
        assert times, "the listener never closed"
        return min(times)


def _chain(exc: BaseException) -> str:
    parts = []
    cause: BaseException | None = exc
    while cause is not None and len(parts) < 6:
        parts.append(f"{type(cause).__name__}({cause!s}, errno={getattr(cause, 'errno', None)})")
        cause = cause.__cause__ or cause.__context__
    return " <- ".join(parts)


def _classify(exc: httpx.TransportError) -> str:
    """refused: the port no longer accepts; reset: the kernel dropped a connection that was
    still in the listen queue when the socket closed (the app never accepted it)."""
    if isinstance(exc, httpx.ConnectError):
        return "refused"
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ReadError) and getattr(cause, "errno", None) == errno.ECONNRESET:
        return "reset"
    return "failed"


async def _load(
    http: httpx.AsyncClient, record: Record, request: httpx.Request, until: float
) -> None:
    refused = 0
    while refused < 3 and time.monotonic() < until:
        started = time.monotonic()
        try:
            answer = await http.send(request)
            body = answer.json()  # the whole body arrived and parses
            ok = answer.status_code == 200 and isinstance(body, dict)
            kind, detail = ("ok", "") if ok else ("failed", f"{answer.status_code} {answer.text}")
        except httpx.TransportError as exc:
            kind, detail = _classify(exc), _chain(exc)
        record.requests.append(Outcome(kind, started, time.monotonic(), detail))
        refused = refused + 1 if kind == "refused" else 0
        if kind == "refused":
            await asyncio.sleep(0.02)


async def _watch_readiness(http: httpx.AsyncClient, record: Record, until: float) -> None:
    while time.monotonic() < until:
        try:
            status: int | str = (await http.get("/readyz")).status_code
        except httpx.ConnectError:
            status = "refused"
        except httpx.TransportError as exc:
            status = _classify(exc)
        record.readiness.append((time.monotonic(), status))
        if status == "refused":
            return
        await asyncio.sleep(0.02)


@pytest.fixture(params=[1, 2], ids=["one-worker", "two-workers"])
def workers(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def server(database_url: str, tmp_path: Path, workers: int) -> Iterator[Server]:
    started = start_server(
        database_url,
        tmp_path,
        workers=workers,
        MERCATO_SHUTDOWN_DRAIN_S=str(DRAIN_S),
        MERCATO_SHUTDOWN_GRACE_S="20",
        # logins cost real work, so some are in flight when the listener closes
        MERCATO_ARGON2_TIME_COST="3",
        MERCATO_ARGON2_MEMORY_KIB="32768",
    )
    try:
        wait_ready(started)
        yield started
    finally:
        if started.process.poll() is None:
            started.process.kill()
            started.process.wait()


async def test_sigterm_under_load_drains_serves_every_accepted_request_and_exits_0(
    server: Server,
) -> None:
    email = f"drain-{time.monotonic_ns()}@example.com"
    limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per request
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=30) as http:
        registered = await http.post(
            "/v1/customers", json={"email": email, "password": PASSWORD, "name": "Drain"}
        )
        assert registered.status_code == 201, registered.text
        record = Record()
        until = time.monotonic() + DRAIN_S + 25
        reads = [http.build_request("GET", "/v1/products", params={"limit": 5}) for _ in range(4)]
        logins = [
            http.build_request(
                "POST", "/v1/auth/token", json={"email": email, "password": PASSWORD}
            )
            for _ in range(3)
        ]
        load = [
            asyncio.create_task(_load(http, record, request, until)) for request in reads + logins
        ]
        watcher = asyncio.create_task(_watch_readiness(http, record, until))
        await asyncio.sleep(1.0)
        signalled = time.monotonic()
        server.process.terminate()
        await asyncio.gather(*load, watcher)
    code = await asyncio.to_thread(server.process.wait, 30)
    assert code == 0, server.log.read_text()

    closed = record.first_refusal()
    unready = [t for t, status in record.readiness if status == 503 and t > signalled]
    assert unready, "readiness never failed"
    assert unready[0] < closed, "the listener closed before readiness failed"
    # at once, give or take a loaded machine, and on every worker: never ready again
    assert unready[0] - signalled < 1.0, "readiness did not fail at once"
    after = [status for t, status in record.readiness if t >= unready[0]]
    assert set(after) <= {503, "refused", "reset"}, after
    assert closed - signalled >= DRAIN_S * 0.9, "the listener closed before the drain delay"

    failures = [o for o in record.requests if o.kind == "failed"]
    assert not failures, [(o.started - closed, o.ended - closed, o.detail) for o in failures[:5]]
    # A reset is a connection still queued in the kernel when the listening socket closed (the
    # app never accepted it): it arrives at the moment of the close. A cut request shows up as
    # "failed" above (the server closes it without an answer, no reset).
    resets = [o for o in record.requests if o.kind == "reset"]
    assert all(abs(o.ended - closed) < 0.5 for o in resets), (closed, resets[:5])
    during_drain = [o for o in record.requests if o.kind == "ok" and unready[0] < o.started]
    assert len(during_drain) >= 10, "requests during the drain were not served"
    in_flight = [o for o in record.requests if o.kind == "ok" and o.started < closed < o.ended]
    assert in_flight, "no request in flight at the close was finished"
    served = sum(o.kind == "ok" for o in record.requests)
    print(
        f"\nshutdown: {served} served, readiness 503 after {unready[0] - signalled:.3f} s, "
        f"listener closed after {closed - signalled:.3f} s, {len(in_flight)} finished in flight, "
        f"{sum(o.kind == 'reset' for o in record.requests)} unaccepted connections reset"
    )


def _stalled_upload(server: Server) -> socket.socket:
    """A request whose body never finishes arriving: in flight until the server gives up."""
    port = int(server.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        b"POST /v1/customers HTTP/1.1\r\nHost: mercato\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    return sock


def _wait_unready(server: Server) -> None:
    deadline = time.monotonic() + 10
    while httpx.get(f"{server.base_url}/readyz", timeout=2).status_code != 503:
        assert time.monotonic() < deadline, "readiness never failed"
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_a_second_sigterm_forces_the_exit(database_url: str, tmp_path: Path, workers: int) -> None:
    server = start_server(
        database_url,
        tmp_path,
        workers=workers,
        MERCATO_SHUTDOWN_DRAIN_S="0.3",
        MERCATO_SHUTDOWN_GRACE_S="60",
    )
    stalled: list[socket.socket] = []
    try:
        wait_ready(server)
        stalled += [_stalled_upload(server) for _ in range(workers * 2)]
        server.process.terminate()
        _wait_unready(server)
        time.sleep(1.0)  # past the drain: the server now waits for the stalled requests
        assert server.process.poll() is None, "it did not wait for requests in flight"
        forced_at = time.monotonic()
        server.process.terminate()
        code = server.process.wait(timeout=10)
        took = time.monotonic() - forced_at
        assert code == 1, server.log.read_text()
        assert took < 2, f"the forced exit took {took:.2f} s"
    finally:
        for sock in stalled:
            sock.close()
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def test_the_grace_deadline_forces_the_exit(database_url: str, tmp_path: Path) -> None:
    server = start_server(
        database_url, tmp_path, MERCATO_SHUTDOWN_DRAIN_S="0.2", MERCATO_SHUTDOWN_GRACE_S="1"
    )
    stalled: socket.socket | None = None
    try:
        wait_ready(server)
        stalled = _stalled_upload(server)
        signalled = time.monotonic()
        server.process.terminate()
        code = server.process.wait(timeout=15)
        took = time.monotonic() - signalled
        assert code == 1, server.log.read_text()
        assert 1.0 <= took < 6, took
        stalled.settimeout(5)
        answer = stalled.recv(4096)
        # the cut request is told why and to retry elsewhere, not left with a bare 500
        assert answer.startswith(b"HTTP/1.1 503 "), answer
        assert b'"code":"shutting_down"' in answer
        assert b"retry-after: 0" in answer.lower()
    finally:
        if stalled is not None:
            stalled.close()
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def _worker_pids(server: Server) -> set[int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    pids = {int(p) for p in children.read_text().split()}
    # the supervisor's children are the workers and multiprocessing's resource tracker
    return {p for p in pids if "multiprocessing.spawn" in Path(f"/proc/{p}/cmdline").read_text()}


def _live_pids_in_metrics(server: Server) -> set[int]:
    text = httpx.get(f"{server.base_url}/metrics", timeout=5).text
    return {int(pid) for pid in re.findall(r'^mercato_process_up\{pid="(\d+)"\} 1', text, re.M)}


def test_the_supervisor_replaces_a_worker_that_dies_and_forgets_its_metrics(
    database_url: str, tmp_path: Path
) -> None:
    server = start_server(database_url, tmp_path, workers=2)
    try:
        wait_ready(server)
        first = _worker_pids(server)
        assert len(first) == 2
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            now = _worker_pids(server)
            if len(now) == 2 and victim not in now:
                break
            assert time.monotonic() < deadline, f"no replacement for worker {victim}: {now}"
            time.sleep(0.1)
        wait_ready(server)
        assert httpx.get(f"{server.base_url}/v1/products", timeout=5).status_code == 200
        deadline = time.monotonic() + 10
        while _live_pids_in_metrics(server) != now:  # both workers answer /metrics in turn
            assert time.monotonic() < deadline, (_live_pids_in_metrics(server), now)
            time.sleep(0.2)
        server.process.terminate()
        assert server.process.wait(timeout=30) == 0, server.log.read_text()
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
async def test_sigterm_ends_event_streams_and_long_polls_with_a_reconnect_hint(
    database_url: str, tmp_path: Path, workers: int
) -> None:
    server = start_server(
        database_url,
        tmp_path,
        workers=workers,
        MERCATO_SHUTDOWN_DRAIN_S="3",
        MERCATO_REALTIME_HEARTBEAT_S="1",
    )
    try:
        wait_ready(server)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            email = f"follow-{time.monotonic_ns()}@example.com"
            body = {"email": email, "password": PASSWORD, "name": "Follower"}
            assert (await http.post("/v1/customers", json=body)).status_code == 201
            token = await http.post("/v1/auth/token", json={"email": email, "password": PASSWORD})
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
            order = (await http.post("/v1/orders", json={}, headers=auth)).json()
            path = f"/v1/orders/{order['id']}"

            async def follow_stream() -> tuple[float, bytes]:
                async with http.stream("GET", f"{path}/events", headers=auth) as stream:
                    assert stream.status_code == 200
                    received = b"".join([chunk async for chunk in stream.aiter_bytes()])
                return time.monotonic(), received

            async def long_poll() -> tuple[float, httpx.Response]:
                unchanged = {**auth, "If-None-Match": f'"{order["version"]}"'}
                answer = await http.get(path, params={"wait": "30"}, headers=unchanged)
                return time.monotonic(), answer

            streams = [asyncio.create_task(follow_stream()) for _ in range(workers * 2)]
            polls = [asyncio.create_task(long_poll()) for _ in range(workers * 2)]
            await asyncio.sleep(1.0)  # all of them are waiting now
            assert not any(task.done() for task in streams + polls)
            signalled = time.monotonic()
            server.process.terminate()
            ended = await asyncio.gather(*streams)
            answered = await asyncio.gather(*polls)
        for at, received in ended:
            assert at - signalled < 1.5, "the stream was not ended when draining began"
            assert b'event: reconnect\ndata: {"reason":"shutdown"}\nretry: ' in received
        for at, answer in answered:
            assert at - signalled < 1.5, "the long poll was not answered when draining began"
            assert answer.status_code == 304
            assert answer.headers["connection"] == "close"
        assert await asyncio.to_thread(server.process.wait, 30) == 0, server.log.read_text()
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
