"""Migrations on PostgreSQL give up waiting for a busy table after lock_timeout, and retry.

A DDL statement waiting for a table's lock makes every later query on that table wait behind
it; with ``lock_timeout`` it gives way quickly, and the run is retried until the table is free.
SQLite has no lock queue of this kind (one writer, a busy timeout), so this is PostgreSQL's test.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import asyncpg
import pytest
from alembic import command

from mercato.migrations import migrate
from tests.conftest import PG_URL, REQUIRE_PG
from tests.e2e.scratch import scratch_database


def _postgres() -> None:
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("MERCATO_TEST_REQUIRE_POSTGRES=1 but MERCATO_TEST_DATABASE_URL is not set")
        pytest.skip("needs PostgreSQL (MERCATO_TEST_DATABASE_URL)")


def _downgrade(url: str, *, attempts: int, errors: list[BaseException]) -> threading.Thread:
    config = migrate.alembic_config(url)
    config.set_main_option("lock_timeout_ms", "200")
    config.set_main_option("attempts", str(attempts))

    def run() -> None:
        try:
            command.downgrade(config, "0005")
        except BaseException as exc:  # reported to the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


async def _hold(url: str) -> asyncpg.Connection:
    """A reader in an open transaction: its lock blocks DROP TABLE platform_switches."""
    holder = await asyncpg.connect(url)
    await holder.execute("BEGIN")
    await holder.fetch("SELECT * FROM platform_switches")
    return holder


async def _read_time(url: str) -> float:
    reader = await asyncpg.connect(url)
    try:
        started = time.monotonic()
        await reader.fetch("SELECT * FROM platform_switches", timeout=30)
        return time.monotonic() - started
    finally:
        await reader.close()


def test_a_migration_retries_until_the_busy_table_is_free_without_queueing_readers(
    tmp_path: Path,
) -> None:
    _postgres()
    with scratch_database("postgres", tmp_path, "lock_timeout") as url:
        migrate.upgrade(url)
        loop = asyncio.new_event_loop()
        try:
            holder = loop.run_until_complete(_hold(url))
            errors: list[BaseException] = []
            migration = _downgrade(url, attempts=30, errors=errors)
            time.sleep(1.0)  # the migration has waited and given way at least once
            # readers are not stuck behind the waiting DROP TABLE for longer than its timeout
            assert loop.run_until_complete(_read_time(url)) < 1.0
            assert migration.is_alive()
            loop.run_until_complete(holder.execute("ROLLBACK"))
            loop.run_until_complete(holder.close())
            migration.join(timeout=60)
        finally:
            loop.close()
        assert not migration.is_alive()
        assert errors == []
        assert migrate.current(url) == "0005"


def test_a_migration_that_never_gets_its_lock_fails_instead_of_hanging(tmp_path: Path) -> None:
    _postgres()
    with scratch_database("postgres", tmp_path, "lock_busy") as url:
        migrate.upgrade(url)
        loop = asyncio.new_event_loop()
        try:
            holder = loop.run_until_complete(_hold(url))
            errors: list[BaseException] = []
            started = time.monotonic()
            migration = _downgrade(url, attempts=2, errors=errors)
            migration.join(timeout=60)
            took = time.monotonic() - started
            loop.run_until_complete(holder.close())
        finally:
            loop.close()
        assert not migration.is_alive()
        (error,) = errors
        assert "lock timeout" in str(error).lower(), error
        assert took < 10
        # nothing half-done: revisions whose index work runs CONCURRENTLY (outside the run's
        # transaction) may have stepped down, but the blocked revision is still applied whole
        # and the database is at a revision boundary that upgrades back to head
        assert migrate.current(url) not in (None, "0005")
        migrate.upgrade(url)
        assert migrate.current(url) == migrate.head()
