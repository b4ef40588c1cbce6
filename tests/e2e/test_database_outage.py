"""A database outage under load: fail fast with 503s, never restart, recover by itself.

PostgreSQL is stopped and started again while clients keep calling a real ``mercato serve``.
It runs on a private cluster (``pgcluster``), never the shared test server. Skipped only when
the PostgreSQL server binaries are missing, and never when MERCATO_TEST_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from mercato.migrations import migrate
from tests.conftest import REQUIRE_PG
from tests.e2e.pgcluster import Cluster, postgres_bin, private_cluster
from tests.e2e.server import Server, start_server, stop_server, wait_ready

pytestmark = pytest.mark.anyio

FAIL_FAST_S = 2.5  # no request may take longer than this while the database is down


@dataclass
class Seen:
    at: float
    took: float
    status: int | str
    code: str | None = None
    retry_after: str | None = None


@dataclass
class Traffic:
    requests: list[Seen] = field(default_factory=list)
    readiness: list[Seen] = field(default_factory=list)
    liveness: list[Seen] = field(default_factory=list)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if postgres_bin() is None:
        if REQUIRE_PG:
            pytest.fail("MERCATO_TEST_REQUIRE_POSTGRES=1 but initdb/pg_ctl are not installed")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with private_cluster() as made:
        migrate.upgrade(made.url)
        yield made


@pytest.fixture
def server(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    started = start_server(
        cluster.url,
        tmp_path_factory.mktemp("outage"),
        workers=2,
        MERCATO_DATABASE_TIMEOUT_S="2",
        MERCATO_RUN_WORKERS="true",
    )
    try:
        wait_ready(started)
        yield started
    finally:
        if started.process.poll() is None:
            stop_server(started)


async def _call(http: httpx.AsyncClient, request: httpx.Request) -> Seen:
    started = time.monotonic()
    try:
        answer = await http.send(request)
    except httpx.TransportError as exc:
        return Seen(started, time.monotonic() - started, type(exc).__name__)
    code = None
    if answer.headers.get("content-type", "").startswith("application/problem+json"):
        code = answer.json()["code"]
    return Seen(
        started,
        time.monotonic() - started,
        answer.status_code,
        code,
        answer.headers.get("retry-after"),
    )


async def _shop(
    http: httpx.AsyncClient, traffic: Traffic, stop: asyncio.Event, write: bool
) -> None:
    while not stop.is_set():
        if write:
            email = f"outage-{uuid.uuid4().hex[:10]}@example.com"
            request = http.build_request(
                "POST",
                "/v1/customers",
                json={"email": email, "password": "correct horse battery", "name": "O"},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
        else:
            request = http.build_request("GET", "/v1/products", params={"limit": 5})
        traffic.requests.append(await _call(http, request))
        await asyncio.sleep(0.01)


async def _probe(http: httpx.AsyncClient, path: str, seen: list[Seen], stop: asyncio.Event) -> None:
    while not stop.is_set():
        seen.append(await _call(http, http.build_request("GET", path)))
        await asyncio.sleep(0.05)


async def _until(seen: list[Seen], status: int, after: float, within: float) -> float:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        hits = [s.at for s in seen if s.at > after and s.status == status]
        if hits:
            return hits[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {status} within {within} s")


async def test_a_database_outage_answers_503_fast_and_recovers_without_a_restart(
    cluster: Cluster, server: Server
) -> None:
    traffic = Traffic()
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as http:
        tasks = [asyncio.create_task(_shop(http, traffic, stop, write=i == 0)) for i in range(4)]
        tasks.append(asyncio.create_task(_probe(http, "/readyz", traffic.readiness, stop)))
        tasks.append(asyncio.create_task(_probe(http, "/livez", traffic.liveness, stop)))
        try:
            await asyncio.sleep(1.0)
            down = time.monotonic()
            await asyncio.to_thread(cluster.stop, "fast")
            unready = await _until(traffic.readiness, 503, down, within=10)
            await asyncio.sleep(3.0)  # a stretch of outage under load
            up = time.monotonic()
            await asyncio.to_thread(cluster.start)
            ready = await _until(traffic.readiness, 200, up, within=20)
            await asyncio.sleep(2.0)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    assert server.process.poll() is None, "the server restarted or died"
    assert unready - down < 5, "readiness took too long to notice the outage"
    failing = next(s for s in traffic.readiness if s.at >= unready)
    assert failing.code is None  # a probe body, not a problem

    outage = [s for s in traffic.requests if down + 0.5 < s.at and s.at + s.took < up]
    assert len(outage) >= 20, len(outage)
    assert {s.status for s in outage} == {503}, sorted({str(s.status) for s in outage})
    assert {s.code for s in outage} == {"database_unavailable"}
    assert all(s.retry_after for s in outage)
    slowest = max(s.took for s in outage)
    assert slowest < FAIL_FAST_S, f"a request hung for {slowest:.2f} s"

    everything = traffic.requests + traffic.liveness
    assert not [s for s in everything if isinstance(s.status, str)], "a request got no answer"
    assert not [s for s in everything if s.status == 500], "an outage must never be a 500"
    assert {s.status for s in traffic.liveness} == {200}, "liveness must ignore the database"

    recovered = [s for s in traffic.requests if s.at > ready + 0.5]
    assert recovered, "no traffic after recovery"
    assert {s.status for s in recovered} <= {200, 201}, [s for s in recovered if s.status >= 300]
    print(
        f"\noutage: readiness 503 after {unready - down:.2f} s, {len(outage)} requests "
        f"answered 503 (slowest {slowest * 1000:.0f} ms), ready again {ready - up:.2f} s "
        "after PostgreSQL started"
    )
    assert stop_server(server) == 0
