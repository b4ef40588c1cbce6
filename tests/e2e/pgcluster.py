"""A private, throw-away PostgreSQL cluster, for tests that stop and start the database.

The shared test server must never be stopped (other suites use it), so an outage test makes
its own cluster with ``initdb`` on a free port and a private socket folder. As root, the
PostgreSQL binaries refuse to run, so the cluster then belongs to the ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.server import free_port


def postgres_bin() -> Path | None:
    """The folder with initdb and pg_ctl, newest version first; None when not installed."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int
    owner: str | None  # the user the binaries run as, when we are root

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/mercato"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options,
            "-w", "-t", "30", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def log(self) -> str:
        path = self.root / "log"
        return path.read_text() if path.exists() else ""


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """initdb, start, create database ``mercato``; stop and delete it all afterwards."""
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="mercato-pg-"))
    owner = None
    if os.geteuid() == 0:
        owner = "postgres"
        user = pwd.getpwnam(owner)
        os.chown(root, user.pw_uid, user.pw_gid)
    cluster = Cluster(bindir, root, free_port(), owner)
    try:
        cluster._run("initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "-N")
        cluster.start()
        cluster._run(
            "createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "mercato"
        )
        yield cluster
    finally:
        try:
            if cluster.running():
                cluster.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)
