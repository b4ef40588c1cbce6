"""outbox to NATS JetStream: a per-destination marker and claim on outbox rows (expand)

The NATS relay (:mod:`mercato.platform.jetstream`) keeps its own progress beside the
in-process relay's: ``nats_published_at`` (acknowledged by JetStream), ``nats_claim`` (the
batch that holds the row) and ``nats_claimed_until`` (that batch's lease). Three nullable
columns without defaults: adding them rewrites nothing on PostgreSQL, and the release still
running neither reads nor writes them, so the in-process relay and the notify path are
untouched. Rows that exist when this runs are unpublished to NATS: a stream turned on later
receives the outbox's history first (docs/events.md).

Two partial indexes where ``nats_published_at IS NULL`` serve the claim: on ``seq`` (the
oldest rows first, a short scan however long the backlog) and on ``(aggregate_id, seq)`` (is an
earlier event of the same aggregate held by another batch?). On PostgreSQL they are built
``CONCURRENTLY`` outside the migration's transaction, as in 0003: the outbox is written by
every order. A failed concurrent build can leave an invalid index that ``IF NOT EXISTS`` would
keep; drop it (``DROP INDEX CONCURRENTLY <name>``) before running this again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 07:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = {
    "ix_platform_outbox_nats_pending": ["seq"],
    "ix_platform_outbox_nats_unpublished": ["aggregate_id", "seq"],
}
_UNPUBLISHED = "nats_published_at IS NULL"


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("nats_published_at", sa.DateTime(timezone=True)),
        sa.Column("nats_claim", sa.String(length=32)),
        sa.Column("nats_claimed_until", sa.DateTime(timezone=True)),
    ]


def upgrade() -> None:
    # plain ALTER TABLE ... ADD COLUMN on both; IF NOT EXISTS (PostgreSQL) lets a run repeat
    for column in _columns():
        op.add_column("platform_outbox", column, if_not_exists=_postgres() or None)
    if not _postgres():
        with op.batch_alter_table("platform_outbox", schema=None) as batch_op:
            for name, columns in _INDEXES.items():
                batch_op.create_index(name, columns, sqlite_where=sa.text(_UNPUBLISHED))
        return
    with op.get_context().autocommit_block():
        for name, columns in _INDEXES.items():
            op.create_index(
                name,
                "platform_outbox",
                columns,
                postgresql_where=sa.text(_UNPUBLISHED),
                postgresql_concurrently=True,
                if_not_exists=True,
            )


def downgrade() -> None:
    for name in _INDEXES:
        if _postgres():
            with op.get_context().autocommit_block():
                op.drop_index(
                    name, table_name="platform_outbox", postgresql_concurrently=True, if_exists=True
                )
        else:
            with op.batch_alter_table("platform_outbox", schema=None) as batch_op:
                batch_op.drop_index(name)
    # ALTER TABLE ... DROP COLUMN on both (SQLite 3.35+): batch mode would copy the table and
    # lose AUTOINCREMENT, and outbox sequence numbers must never be reused
    for column in ("nats_claimed_until", "nats_claim", "nats_published_at"):
        op.execute(f"ALTER TABLE platform_outbox DROP COLUMN {column}")
