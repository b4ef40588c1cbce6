"""Staging and production keep metrics off the public API port.

Revenue, payment failures and error rates are for Prometheus, not for whoever can reach the
API: there ``/metrics`` answers 404 on the API port, and a port of its own
(``MERCATO_METRICS_PORT``, which the API Service does not expose) serves the metrics of every
process of the server, or of ``mercato worker``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.scrape import Series, private_metrics_env, scrape, value
from tests.e2e.server import free_port, server_env, start_server, stop_server, wait_ready

REQUESTS = 40
MISSING_PRODUCT = {"route": "/v1/products/{product_id}", "status": "404"}


def _counted(url: str, expected: int, **labels: str) -> Series:
    """Scrape ``url`` until ``http_requests_total`` with ``labels`` reaches ``expected``
    (each process moves its counts into the shared files within a second)."""
    deadline = time.monotonic() + 10
    while True:
        series = scrape(url)
        seen = value(series, "http_requests_total", **labels)
        if seen == expected:
            return series
        assert time.monotonic() < deadline, f"counted {seen} requests, not {expected}"
        time.sleep(0.2)


def _refused(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status, (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"] == "application/problem+json"
    assert "http_requests_total" not in answer.text
    assert "mercato_payments_total" not in answer.text


def _closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize(
    ("profile", "workers"), [("staging", 1), ("staging", 2), ("production", 2)]
)
def test_metrics_are_served_on_the_metrics_port_only_and_count_the_api_ports_requests(
    database_url: str, backend: str, tmp_path: Path, profile: str, workers: int
) -> None:
    if profile == "production" and backend == "sqlite":
        pytest.skip("the production profile refuses SQLite")
    metrics_port = free_port()
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    server = start_server(
        database_url, tmp_path, workers=workers, **private_metrics_env(profile, metrics_port)
    )
    try:
        wait_ready(server)
        for path in ("/metrics", "/metrics/", "/METRICS", "/metrics?format=text"):
            _refused(httpx.get(server.base_url + path, timeout=10), 404)
        posing = {  # a client claiming to have come in on the metrics port
            "Host": f"127.0.0.1:{metrics_port}",
            "X-Forwarded-Port": str(metrics_port),
            "X-Forwarded-For": "127.0.0.1",
            "Forwarded": f"for=127.0.0.1;host=127.0.0.1:{metrics_port}",
        }
        _refused(httpx.get(f"{server.base_url}/metrics", headers=posing, timeout=10), 404)
        missing = f"{server.base_url}/v1/products/{uuid.uuid4()}"
        for _ in range(REQUESTS):  # a new connection each time: every process gets some
            assert httpx.get(missing, timeout=10).status_code == 404

        series = _counted(metrics, REQUESTS, **MISSING_PRODUCT)
        assert value(series, "mercato_ready") >= 1, "sampled at the scrape, as /readyz answers"
        assert value(series, "http_requests_total", route="<unmatched>", status="404") >= 4
        if workers > 1:
            live = {
                dict(labels)["pid"]
                for (name, labels), v in series.items()
                if name == "mercato_process_up" and v == 1
            }
            assert len(live) == workers, "every worker process's metrics are in one scrape"
            for _ in range(6):  # whichever process takes the connection, all counts are there
                assert value(scrape(metrics), "http_requests_total", **MISSING_PRODUCT) == REQUESTS

        # the metrics port serves metrics and nothing else
        base = f"http://127.0.0.1:{metrics_port}"
        for path in ("/v1/products", "/readyz", "/docs", "/", "/metrics/extra"):
            _refused(httpx.get(base + path, timeout=10), 404)
        _refused(httpx.post(f"{base}/metrics", timeout=10), 405)

        assert stop_server(server) == 0, server.log.read_text()
        assert _closed(metrics_port), "the metrics port closes with the server"
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def test_the_worker_process_serves_its_metrics_on_the_metrics_port(
    database_url: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    log = tmp_path / "worker.log"
    env = server_env(database_url, **private_metrics_env("staging", metrics_port))
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "mercato", "worker"], env=env, stdout=out, stderr=out
        )
    try:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        deadline = time.monotonic() + 30
        while True:
            try:
                series = scrape(url)
                if value(series, "mercato_worker_runs_total", worker="outbox-relay") > 0:
                    break
            except httpx.TransportError:
                pass
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no worker metrics:\n{log.read_text()}"
            time.sleep(0.2)
        assert value(series, "mercato_outbox_backlog") >= 0
        _refused(httpx.get(f"http://127.0.0.1:{metrics_port}/readyz", timeout=10), 404)

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log.read_text()
        assert _closed(metrics_port)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_a_draining_server_still_answers_scrapes_on_the_metrics_port(
    database_url: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    env = private_metrics_env("staging", metrics_port, MERCATO_SHUTDOWN_DRAIN_S="3")
    server = start_server(database_url, tmp_path, **env)
    try:
        wait_ready(server)
        assert value(scrape(metrics), "mercato_ready") == 1
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        while httpx.get(f"{server.base_url}/readyz", timeout=5).status_code != 503:
            assert time.monotonic() < deadline, "readiness never failed"
            time.sleep(0.05)
        assert value(scrape(metrics), "mercato_ready") == 0, "Prometheus sees the drain"
        assert server.process.wait(timeout=30) == 0, server.log.read_text()
        assert _closed(metrics_port)
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def test_serving_the_api_on_the_metrics_port_is_refused(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = server_env(database_url, **private_metrics_env("staging", port))
    done = subprocess.run(
        [sys.executable, "-m", "mercato", "serve", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "MERCATO_METRICS_PORT" in done.stderr
    assert _closed(port)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_metrics_port_already_taken_stops_the_process_before_it_starts(
    database_url: str, tmp_path: Path, command: str
) -> None:
    args = ["--port", str(free_port())] if command == "serve" else []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = server_env(database_url, **private_metrics_env("staging", port))
        done = subprocess.run(
            [sys.executable, "-m", "mercato", command, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "in use" in done.stdout + done.stderr
