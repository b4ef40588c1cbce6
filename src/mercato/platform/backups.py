"""The record of finished backups, kept in the database the backups are of.

``mercato db backup`` adds a row when a backup file is complete and its checksum written;
every serving process exports the newest one's time as ``mercato_backup_last_success_timestamp_
seconds``, which the ``MercatoBackupTooOld`` alert watches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Gauge

from mercato.platform.db import Database, metadata, sql

backups = sa.Table(
    "platform_backups",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("size_bytes", sa.BigInteger(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Index("ix_platform_backups_finished_at", "finished_at"),
)

_b = backups.c
# the column itself, not max(): on SQLite only a column carries its timestamp converter
_NEWEST = sql(sa.select(_b.finished_at).order_by(_b.finished_at.desc()).limit(1))
RECORD = sql(
    backups.insert().values(
        name=sa.bindparam("name"),
        finished_at=sa.bindparam("finished_at"),
        size_bytes=sa.bindparam("size_bytes"),
        sha256=sa.bindparam("sha256"),
    )
)


async def newest_backup(db: Database) -> datetime | None:
    """When the newest recorded backup finished (None: never)."""
    async with db.connection() as conn:
        value: datetime | None = await conn.fetchval(_NEWEST)
    return value


def backup_age_sampler(
    db: Database, registry: CollectorRegistry | None
) -> Callable[[], Awaitable[None]]:
    """A scrape-time refresher exporting when the newest backup finished (0: never)."""
    gauge = Gauge(
        "mercato_backup_last_success_timestamp_seconds",
        "When the newest recorded 'mercato db backup' finished (Unix time; 0: never).",
        multiprocess_mode="livemostrecent",
        registry=registry,
    )

    async def sample() -> None:
        newest = await newest_backup(db)
        gauge.set(newest.timestamp() if newest is not None else 0.0)

    return sample
