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
            "MERCATO_DATABASE_URL": database_url,
            "MERCATO_TOKEN_SECRET": TEST_SECRET,
            "MERCATO_ARGON2_TIME_COST": "1",
            "MERCATO_ARGON2_MEMORY_KIB": "8",
            "MERCATO_WORKER_IDLE_S": "0.2",
            "MERCATO_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


@contextmanager
def running_server(
    database_url: str, log_dir: Path, *, workers: int = 1, **extra: str
) -> Iterator[Server]:
    """Start ``mercato serve``, wait until /readyz answers, stop it with SIGTERM afterwards."""
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
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield Server(base, process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
