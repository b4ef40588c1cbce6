"""A real mercato server in a child process, for tests that need real HTTP and processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MERCATO_")}
    env.update(
        {
            "MERCATO_ENV": "test",
            "MERCATO_DATABASE_URL": database_url,
            "MERCATO_TOKEN_SECRET": TEST_SECRET,
            "MERCATO_ARGON2_TIME_COST": "1",
            "MERCATO_ARGON2_MEMORY_KIB": "8",
            "MERCATO_WORKER_IDLE_S": "0.2",
            "MERCATO_LOG_LEVEL": "WARNING",
            "MERCATO_SEARCH_SEMANTIC": "false",
            **extra,
        }
    )
    return env


def start_server(database_url: str, log_dir: Path, *, workers: int = 1, **extra: str) -> Server:
    """Start ``mercato serve`` in a child process (not waiting for it to be ready)."""
    port = free_port()
    log = log_dir / f"server-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mercato",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=server_env(database_url, **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(f"http://127.0.0.1:{port}", process, log)


def wait_ready(server: Server, *, within: float = 30) -> None:
    """Wait until /readyz answers 200 (or fail with the server's log)."""
    deadline = time.monotonic() + within
    while True:
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start:\n{server.log.read_text()}")
        time.sleep(0.1)


def stop_server(server: Server, *, within: float = 30) -> int:
    """SIGTERM, wait for the exit (killing it after ``within`` seconds); the exit status."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        raise


@contextmanager
def running_server(
    database_url: str, log_dir: Path, *, workers: int = 1, **extra: str
) -> Iterator[Server]:
    """Start ``mercato serve``, wait until /readyz answers, stop it with SIGTERM afterwards."""
    server = start_server(database_url, log_dir, workers=workers, **extra)
    try:
        wait_ready(server)
        yield server
    finally:
        stop_server(server)
