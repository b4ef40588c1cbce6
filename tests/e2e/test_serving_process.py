"""What each ``mercato serve`` process does to itself once the application has started."""

from __future__ import annotations

import http.client
import re
import time
from pathlib import Path

import pytest

from tests.e2e.server import running_server

TUNED = re.compile(r"garbage collector: threshold (\d+), (\d+) start-up objects frozen")


def _tuned_lines(log: Path, count: int) -> list[re.Match[str]]:
    deadline = time.monotonic() + 10  # the log writer flushes once a second
    while True:
        found = [m for m in map(TUNED.search, log.read_text().splitlines()) if m]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_every_serving_process_freezes_its_start_up_objects(
    database_url: str, tmp_path: Path, workers: int
) -> None:
    with running_server(
        database_url, tmp_path, workers=workers, MERCATO_LOG_LEVEL="INFO"
    ) as server:
        found = _tuned_lines(server.log, workers)
    assert len(found) == workers, server.log.read_text()
    for match in found:
        assert int(match[1]) == 50_000
        assert int(match[2]) > 10_000  # modules, routes, settings: the whole application


def test_the_policy_follows_the_settings(database_url: str, tmp_path: Path) -> None:
    with running_server(
        database_url,
        tmp_path,
        MERCATO_LOG_LEVEL="INFO",
        MERCATO_GC_FREEZE="false",
        MERCATO_GC_THRESHOLD="2000",
    ) as server:
        found = _tuned_lines(server.log, 1)
    assert [(int(m[1]), int(m[2])) for m in found] == [(2000, 0)], server.log.read_text()


def test_an_idle_connection_outlives_a_proxys_keepalive(database_url: str, tmp_path: Path) -> None:
    # A proxy reuses its idle connections to the server for up to its own timeout (60 s for
    # ingress-nginx); a server that closed them sooner would race the proxy's next request.
    with running_server(database_url, tmp_path) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            for _ in range(2):
                conn.request("GET", "/livez")  # on the same connection: a closed one raises
                answer = conn.getresponse()
                answer.read()
                assert answer.status == 200
                time.sleep(6)  # longer than uvicorn's own default of 5 s
        finally:
            conn.close()
