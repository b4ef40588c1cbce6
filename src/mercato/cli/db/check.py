"""``mercato db check``: may this build serve the database? Optionally wait until it may."""

from __future__ import annotations

import time
from typing import TextIO

from alembic.script import ScriptDirectory

from mercato.migrations import migrate
from mercato.migrations.compat import Verdict, assess

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNREACHABLE = 3


def read_verdict(database_url: str) -> Verdict:
    """The verdict for the database at ``database_url`` (raises when it cannot be read)."""
    script = ScriptDirectory.from_config(migrate.alembic_config(database_url))
    return assess(migrate.current(database_url), script)


def check(database_url: str, *, wait_s: float, out: TextIO, poll_s: float = 1.0) -> int:
    """Print the verdict; with ``wait_s`` > 0 retry until the build may serve or time runs out.

    Exit status: 0 may serve, 1 schema refused, 3 database unreachable.
    """
    deadline = time.monotonic() + wait_s
    said = ""
    while True:
        try:
            verdict = read_verdict(database_url)
            status, line = (EXIT_OK if verdict.may_serve else EXIT_REFUSED), verdict.describe()
        except Exception as exc:  # unreachable, refused, missing driver: all "not yet"
            status, line = EXIT_UNREACHABLE, f"database unreachable: {type(exc).__name__}: {exc}"
        if line != said:
            print(line, file=out, flush=True)
            said = line
        if status == EXIT_OK or time.monotonic() >= deadline:
            return status
        time.sleep(poll_s)
