"""Database migrations through Alembic's API (the CLI, the start-up schema check, the tests)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from mercato.migrations.compat import Standing, assess
from mercato.platform.db import Database, DatabaseError, sql, sqlalchemy_url

log = logging.getLogger("mercato.migrate")

MIGRATIONS = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for a mercato database URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "-1") -> None:
    """Revert migrations down to ``revision``."""
    command.downgrade(alembic_config(database_url), revision)


def head() -> str | None:
    """The newest revision in the migration scripts."""
    return ScriptDirectory.from_config(alembic_config("sqlite:///unused")).get_current_head()


def current(database_url: str) -> str | None:
    """The revision the database is at (None for an empty database)."""

    async def read() -> str | None:
        engine = create_async_engine(sqlalchemy_url(database_url))
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())


class SchemaMismatch(Exception):
    """The database is not at the migration this build expects."""


_VERSION = sql(sa.select(sa.column("version_num")).select_from(sa.table("alembic_version")))


@dataclass(frozen=True)
class SchemaCheck:
    """Start-up check: this build may serve the schema (:mod:`mercato.migrations.compat`).

    A database older than the build's oldest schema, or empty, is refused (the migration Job
    runs first: migrations are never part of a replica's start-up). A schema newer than the
    build is accepted and logged: a rollback to an earlier build after a newer one migrated.
    """

    db: Database
    script: ScriptDirectory

    @classmethod
    def for_database(cls, db: Database) -> SchemaCheck:
        """The check against the migration scripts shipped with this build."""
        return cls(db, ScriptDirectory.from_config(alembic_config("sqlite:///unused")))

    async def __call__(self) -> None:
        try:
            async with self.db.connection() as conn:
                current = await conn.fetchval(_VERSION)
        except DatabaseError:
            raise
        except Exception as exc:  # the version table is missing: nothing was ever migrated
            raise SchemaMismatch(
                f"no migrations applied ({type(exc).__name__}); run 'mercato db upgrade'"
            ) from exc
        verdict = assess(current, self.script)
        if not verdict.may_serve:
            raise SchemaMismatch(verdict.describe())
        if verdict.standing is Standing.NEWER:
            log.warning(verdict.describe())
