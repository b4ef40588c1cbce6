"""Alembic environment: runs migrations through SQLAlchemy's async engine for either database.

Online on PostgreSQL, every run holds a session advisory lock (concurrent runs queue, and the
next finds nothing left to do; a session lock, unlike a transaction's, survives the commits of
``CREATE INDEX CONCURRENTLY``), and sets ``lock_timeout``: a DDL statement waiting for a busy
table would otherwise queue every query on that table behind it. A run that times out on a
lock rolls back and is retried with backoff, ``attempts`` times.

Offline (``--sql``, which ``mercato db lint`` uses): the PostgreSQL SQL of the revisions, with
the same ``lock_timeout`` and ``statement_timeout`` at the top, for squawk to read.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from mercato.migrations.schema import metadata

config = context.config
target_metadata = metadata
log = logging.getLogger("mercato.migrate")

MIGRATION_LOCK = 0x6D65_7263_6174_6F00  # "mercato\0"
LOCK_TIMEOUT_MS = int(config.get_main_option("lock_timeout_ms") or 5000)
# A bound on any one statement, below the migration Job's deadline (900 s): an index built
# concurrently on a large table is the slowest thing a migration should do.
STATEMENT_TIMEOUT_MS = int(config.get_main_option("statement_timeout_ms") or 600_000)
ATTEMPTS = int(config.get_main_option("attempts") or 5)
LOCK_NOT_AVAILABLE = "55P03"


def _managed(name: str | None, type_: str, parent_names: object) -> bool:
    """Whether autogenerate compares an object: not the search indexes (expression indexes,
    FTS5 tables and their shadow tables), which a migration writes in each database's own SQL
    and the tables cannot describe (``metadata.info["unmanaged"]`` holds their prefixes)."""
    prefixes = tuple(target_metadata.info.get("unmanaged", ()))
    return not (name and prefixes and name.startswith(prefixes))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_managed,
    )


def _timed_out_on_a_lock(exc: DBAPIError) -> bool:
    original = exc.orig
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return code == LOCK_NOT_AVAILABLE or "LockNotAvailableError" in type(original).__name__


def _take_migration_lock(connection: Connection) -> None:
    """Wait for the advisory lock *between* transactions: a session blocked in
    ``pg_advisory_lock`` would sit in an open transaction, which ``CREATE INDEX CONCURRENTLY``
    in the session holding the lock waits for, and the two would deadlock."""
    while True:
        got = connection.exec_driver_sql(f"SELECT pg_try_advisory_lock({MIGRATION_LOCK})")
        taken = bool(got.scalar())
        connection.commit()
        if taken:
            return
        time.sleep(0.2)


def _run_postgres(connection: Connection) -> None:
    _take_migration_lock(connection)
    connection.exec_driver_sql(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
    connection.exec_driver_sql(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
    connection.commit()  # the session keeps the lock and the setting
    try:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with context.begin_transaction():
                    context.run_migrations()
                return
            except DBAPIError as exc:
                if not _timed_out_on_a_lock(exc) or attempt == ATTEMPTS:
                    raise
                pause = random.uniform(0, min(30.0, 0.5 * 2**attempt))
                log.warning(
                    "migration waited %s ms for a lock (attempt %s of %s); retrying in %.1f s",
                    LOCK_TIMEOUT_MS, attempt, ATTEMPTS, pause,
                )  # fmt: skip
                time.sleep(pause)
    finally:
        connection.rollback()
        connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
        connection.commit()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    if connection.dialect.name == "postgresql":
        _run_postgres(connection)
        return
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(
        config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool
    )
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


def run_migrations_online() -> None:
    """Run against a live database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    asyncio.run(_run_async())


def run_migrations_offline() -> None:
    """Write the PostgreSQL SQL of the revisions (``alembic upgrade A:B --sql``)."""
    context.configure(
        url="postgresql://",
        dialect_name="postgresql",
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
    )
    output = context.get_context().impl.static_output
    output(f"SET lock_timeout = {LOCK_TIMEOUT_MS};")
    output(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS};")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
