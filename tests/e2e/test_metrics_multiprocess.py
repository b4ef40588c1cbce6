"""`mercato serve --workers 2`: any process answering /metrics reports every process's counts."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from tests.e2e.scrape import parse, value
from tests.e2e.server import running_server

REQUESTS = 60


def test_counts_from_every_worker_process_add_up(database_url: str, tmp_path: Path) -> None:
    with running_server(database_url, tmp_path, workers=2) as server:
        missing = f"/v1/products/{uuid.uuid4()}"
        for _ in range(REQUESTS):  # a new connection each time: both processes get some
            assert httpx.get(server.base_url + missing, timeout=10).status_code == 404
        route = {"route": "/v1/products/{product_id}", "status": "404"}

        def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
            return parse(httpx.get(server.base_url + "/metrics", timeout=10).text)

        # each process moves its counts into the shared files within a second (metrics.py)
        deadline = time.monotonic() + 10
        while value(scrape(), "http_requests_total", **route) != REQUESTS:
            assert time.monotonic() < deadline, "the counts never added up"
            time.sleep(0.2)
        totals = set()
        pids = set()
        for _ in range(12):
            series = scrape()
            totals.add(value(series, "http_requests_total", **route))
            assert (
                value(series, "http_request_duration_seconds_count", route=route["route"])
                == REQUESTS
            )
            pids |= {
                dict(labels)["pid"]
                for (name, labels), v in series.items()
                if name == "mercato_process_up" and v == 1
            }
        assert totals == {REQUESTS}, "every scrape, whichever process answered, saw all requests"
        assert len(pids) == 2, "two live worker processes report"
