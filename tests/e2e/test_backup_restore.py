"""The restore drill: back up a shop, restore it into a scratch database, check and smoke it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx

from mercato.migrations import migrate
from mercato.migrations.schema import metadata
from mercato.platform.connect import create_database
from mercato.platform.db import sql
from tests.e2e.scratch import scratch_database
from tests.e2e.server import running_server, server_env

DEMO_STAFF = ("staff@mercato.example", "staff-demo-password")


def mercato(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mercato", *args],
        env={
            **server_env(url),
            "MERCATO_SMOKE_STAFF_EMAIL": DEMO_STAFF[0],
            "MERCATO_SMOKE_STAFF_PASSWORD": DEMO_STAFF[1],
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def _counts(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    db = create_database(url, pool_size=1)
    await db.connect()
    try:
        async with db.connection() as conn:
            return {
                name: int(await conn.fetchval(sql(sa.select(sa.func.count()).select_from(table))))
                for name, table in metadata.tables.items()
            }
    finally:
        await db.close()


def counts(url: str) -> dict[str, int]:
    return asyncio.run(_counts(url))


def test_a_backup_restores_into_a_scratch_database_that_checks_and_passes_the_smoke_test(
    backend: str, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    with scratch_database(backend, tmp_path, "backup_source") as source:
        migrate.upgrade(source)
        assert mercato("demo-data", url=source).returncode == 0
        with running_server(source, tmp_path) as shop:
            smoked = mercato("smoke", "--base-url", shop.base_url, url=source)
            assert smoked.returncode == 0, smoked.stdout
            before = counts(source)
            started = time.monotonic()
            made = mercato("db", "backup", "--dir", str(folder), "--label", "drill", url=source)
            backup_s = time.monotonic() - started
            assert made.returncode == 0, made.stderr
            assert "100%" in made.stderr  # the progress bar reached its end
            metrics = httpx.get(f"{shop.base_url}/metrics", timeout=10).text
        (dump,) = [p for p in folder.iterdir() if not p.name.endswith(".sha256")]
        assert f"backup written: {dump}" in made.stdout
        newest = next(
            line for line in metrics.splitlines()
            if line.startswith("mercato_backup_last_success_timestamp_seconds ")
        )  # fmt: skip
        assert abs(float(newest.split()[1]) - time.time()) < 120

        with scratch_database(backend, tmp_path, "restored") as target:
            started = time.monotonic()
            restored = mercato("db", "restore", str(dump), url=target)
            restore_s = time.monotonic() - started
            assert restored.returncode == 0, restored.stderr
            assert "checksum ok" in restored.stderr
            checked = mercato("db", "check", url=target)
            assert checked.returncode == 0, checked.stdout
            after = counts(target)
            # everything the shop held, and nothing else (the backup's own record came after)
            assert after == {**before, "platform_backups": before["platform_backups"]}
            with running_server(target, tmp_path) as copy:
                smoked = mercato("smoke", "--base-url", copy.base_url, url=target)
                assert smoked.returncode == 0, smoked.stdout
            again = mercato("db", "restore", str(dump), url=target)
            assert again.returncode == 1
            assert "not empty" in again.stderr
        print(f"\nrestore drill ({backend}): {dump.stat().st_size} bytes, backup {backup_s:.2f} s, "
              f"restore {restore_s:.2f} s")  # fmt: skip


def test_a_tampered_or_unchecked_backup_is_refused_and_old_backups_are_pruned(
    backend: str, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    with scratch_database(backend, tmp_path, "prune_source") as source:
        migrate.upgrade(source)
        for label in ("one", "two", "three"):
            made = mercato("db", "backup", "--dir", str(folder), "--keep", "2", "--label", label,
                           url=source)  # fmt: skip
            assert made.returncode == 0, made.stderr
            time.sleep(1.1)  # names carry the second
        kept = sorted(p.name for p in folder.iterdir() if not p.name.endswith(".sha256"))
        assert [name.split("-")[2].split(".")[0] for name in kept] == ["two", "three"]
        assert len(list(folder.glob("*.sha256"))) == 2
        refused = mercato("db", "backup", "--dir", str(folder), "--label", "../x", url=source)
        assert refused.returncode == 1
        assert "label" in refused.stderr

        dump = folder / kept[-1]
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
        with scratch_database(backend, tmp_path, "tampered") as target:
            tampered = mercato("db", "restore", str(dump), url=target)
            assert tampered.returncode == 1
            assert "does not match" in tampered.stderr
            (folder / kept[0]).with_name(kept[0] + ".sha256").unlink()
            unchecked = mercato("db", "restore", str(folder / kept[0]), url=target)
            assert unchecked.returncode == 1
            assert "without its checksum" in unchecked.stderr
            assert mercato("db", "check", url=target).returncode == 1  # still empty
