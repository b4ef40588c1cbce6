"""``mercato db backup`` and ``mercato db restore``.

PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore``, with a client at least as new as
the server (an older ``pg_dump`` refuses a newer server, or worse, misses what it cannot
read): the newest client installed is chosen and checked first. SQLite: the online backup API,
which copies a consistent snapshot while the service keeps writing.

Every backup is written as ``<name>.partial``, renamed when complete, and accompanied by
``<name>.sha256`` (``sha256sum`` format); restore refuses a file whose checksum does not match.
The newest ``keep`` backups in the folder are kept, older ones deleted. A finished backup is
recorded in ``platform_backups`` of the database it is of (the backup-age metric reads it).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from mercato.kernel.clock import utcnow
from mercato.platform.backups import RECORD
from mercato.platform.connect import create_database
from mercato.platform.db import is_postgres_url

BACKUP_NAME = re.compile(r"^mercato-\d{8}T\d{6}Z(-[A-Za-z0-9_.-]+)?\.(dump|sqlite3)$")
CHUNK_PAGES = 256


class BackupError(Exception):
    """A backup or restore could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class Backup:
    """A finished backup file and its checksum."""

    path: Path
    size_bytes: int
    sha256: str
    finished_at: datetime


class Progress:
    """A one-line progress bar on ``out`` (redrawn in place on a terminal)."""

    def __init__(self, out: TextIO, label: str, width: int = 30) -> None:
        self.out, self.label, self.width = out, label, width
        self.tty = out.isatty()
        self.shown = -1

    def update(self, done: int, total: int, note: str = "") -> None:
        """Show ``done`` of ``total``; without a terminal, only every tenth."""
        share = min(done / total, 1.0) if total else 1.0
        percent = int(share * 100)
        if not self.tty and percent // 10 == self.shown // 10 and percent < 100:
            return
        self.shown = percent
        bar = "#" * int(share * self.width)
        line = f"{self.label} [{bar:<{self.width}}] {percent:3d}% {note}"[:110]
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=self.out)
        self.out.flush()

    def finish(self) -> None:
        """End the bar's line."""
        if self.tty:
            print(file=self.out)


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def checksum_file(path: Path) -> Path:
    """Where the checksum of a backup file is kept."""
    return path.with_name(path.name + ".sha256")


def verify(path: Path) -> str:
    """The backup's SHA-256, after checking it against its ``.sha256`` file."""
    sidecar = checksum_file(path)
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    if not sidecar.is_file():
        raise BackupError(f"{sidecar}: missing; a backup without its checksum is not restored")
    expected = sidecar.read_text().split()[0].lower() if sidecar.read_text().strip() else ""
    actual = sha256_of(path)
    if actual != expected:
        raise BackupError(f"{path}: checksum {actual} does not match {expected} in {sidecar.name}")
    return actual


# -- PostgreSQL clients ------------------------------------------------------------------------


def _major(version_text: str) -> int:
    found = re.search(r"(\d+)(?:\.\d+)?", version_text)
    if found is None:
        raise BackupError(f"cannot read a version in {version_text!r}")
    return int(found.group(1))


def client_for(tool: str, server_major: int) -> Path:
    """The newest installed ``pg_dump``/``pg_restore`` whose major version is >= the server's."""
    candidates = [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"))]
    on_path = shutil.which(tool)
    if on_path:
        candidates.append(Path(on_path))
    versions = []
    for candidate in candidates:
        shown = subprocess.run([str(candidate), "--version"], capture_output=True, text=True)
        versions.append((_major(shown.stdout), candidate))
    if not versions:
        raise BackupError(f"{tool} is not installed (Debian: apt-get install postgresql-client)")
    major, newest = max(versions)
    if major < server_major:
        raise BackupError(
            f"{tool} {major} is older than the server ({server_major}): install "
            f"postgresql-client-{server_major} or newer"
        )
    return newest


async def _record(url: str, backup: Backup) -> None:
    db = create_database(url, pool_size=1)
    await db.connect()
    try:
        async with db.transaction() as conn:
            await conn.execute(
                RECORD,
                name=backup.path.name,
                finished_at=backup.finished_at,
                size_bytes=backup.size_bytes,
                sha256=backup.sha256,
            )
    finally:
        await db.close()


def _run_reporting(command: list[str], on_line: Callable[[str], None]) -> str:
    """Run a client, feeding each line of its stderr to ``on_line``; its stderr on failure."""
    lines: list[str] = []
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            on_line(line)
    if process.returncode != 0:
        errors = "".join(line for line in lines if "error" in line.lower()) or "".join(lines[-5:])
        raise BackupError(f"{Path(command[0]).name} failed ({process.returncode}):\n{errors}")
    return "".join(lines)


async def _pg_facts(url: str) -> tuple[int, int]:
    """The server's major version and how many tables mercato's schema has."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        major = int(await conn.fetchval("SHOW server_version_num")) // 10000
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        )
        return major, int(tables)
    finally:
        await conn.close()


def _pg_dump(url: str, target: Path, out: TextIO) -> None:
    major, tables = asyncio.run(_pg_facts(url))
    pg_dump = client_for("pg_dump", major)
    bar, dumped = Progress(out, "backup"), 0

    def on_line(line: str) -> None:
        nonlocal dumped
        if "dumping contents of table" in line:
            dumped += 1
            bar.update(dumped, tables, line.rsplit(" ", 1)[-1].strip().strip('"'))

    command = [str(pg_dump), "--format=custom", "--no-owner", "--verbose"]
    _run_reporting([*command, f"--file={target}", f"--dbname={url}"], on_line)
    bar.update(tables, tables)
    bar.finish()


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _sqlite_copy(source: Path, target: Path, bar: Progress) -> None:
    """Copy with the online backup API, a few pages at a time (writers are not blocked)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(
            dst,
            pages=CHUNK_PAGES,
            progress=lambda _status, remaining, total: bar.update(total - remaining, total),
        )
    bar.update(1, 1)
    bar.finish()


def _name(url: str, label: str | None) -> str:
    kind = "dump" if is_postgres_url(url) else "sqlite3"
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    suffix = f"-{label}" if label else ""
    return f"mercato-{stamp}{suffix}.{kind}"


def backup(url: str, folder: Path, *, keep: int, label: str | None, out: TextIO) -> Backup:
    """Back the database up into ``folder``, checksum it, record it, keep the newest ``keep``."""
    if label is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,60}", label):
        raise BackupError(f"label {label!r}: letters, digits, '.', '_' and '-' only (at most 60)")
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / _name(url, label)
    partial = final.with_name(final.name + ".partial")
    try:
        if is_postgres_url(url):
            _pg_dump(url, partial, out)
        else:
            _sqlite_copy(_sqlite_path(url), partial, Progress(out, "backup"))
        digest = sha256_of(partial)
        checksum_file(final).write_text(f"{digest}  {final.name}\n")
        partial.rename(final)
    finally:
        partial.unlink(missing_ok=True)
    made = Backup(final, final.stat().st_size, digest, utcnow())
    asyncio.run(_record(url, made))
    for old in prune(folder, keep=keep):
        print(f"deleted {old.name} (keeping the newest {keep})", file=out)
    return made


def prune(folder: Path, *, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups (and their checksums); the deleted files."""
    found = sorted(p for p in folder.iterdir() if BACKUP_NAME.match(p.name))
    doomed = found[:-keep] if keep > 0 else []
    for path in doomed:
        path.unlink()
        checksum_file(path).unlink(missing_ok=True)
    return doomed


# -- restore -----------------------------------------------------------------------------------


async def _pg_has_tables(url: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        )
        return int(count) > 0
    finally:
        await conn.close()


def _pg_restore(path: Path, url: str, *, replace: bool, out: TextIO) -> None:
    major, _ = asyncio.run(_pg_facts(url))
    pg_restore = client_for("pg_restore", major)
    listed = subprocess.run([str(pg_restore), "--list", str(path)], capture_output=True, text=True)
    if listed.returncode != 0:
        raise BackupError(f"{path}: not a pg_dump custom-format archive: {listed.stderr.strip()}")
    items = sum(1 for line in listed.stdout.splitlines() if line and not line.startswith(";"))
    bar, done = Progress(out, "restore"), 0

    def on_line(line: str) -> None:
        nonlocal done
        if line.startswith("pg_restore: creating") or "processing data for table" in line:
            done += 1
            bar.update(done, items, line.split(":", 1)[-1].strip()[:50])

    command = [str(pg_restore), "--no-owner", "--exit-on-error", "--single-transaction"]
    command += ["--verbose", *(["--clean", "--if-exists"] if replace else [])]
    _run_reporting([*command, f"--dbname={url}", str(path)], on_line)
    bar.update(items, items)
    bar.finish()


def _sqlite_has_tables(path: Path) -> bool:
    if not path.exists():
        return False
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
        return bool(row and row[0])


def restore(path: Path, url: str, *, replace: bool, out: TextIO) -> str:
    """Verify the backup's checksum and restore it into ``url``; its SHA-256.

    The target must be empty unless ``replace`` (then what it holds is dropped first).
    """
    digest = verify(path)
    print(f"checksum ok: {digest}", file=out)
    postgres = is_postgres_url(url)
    if postgres != path.name.endswith(".dump"):
        raise BackupError(f"{path.name} is not a backup of a {url.split(':', 1)[0]} database")
    occupied = (
        asyncio.run(_pg_has_tables(url)) if postgres else _sqlite_has_tables(_sqlite_path(url))
    )
    if occupied and not replace:
        raise BackupError("the target database is not empty; restore into an empty one, or "
                          "pass --replace to drop what it holds")  # fmt: skip
    if postgres:
        _pg_restore(path, url, replace=replace, out=out)
    else:
        _sqlite_copy(path, _sqlite_path(url), Progress(out, "restore"))
    return digest
