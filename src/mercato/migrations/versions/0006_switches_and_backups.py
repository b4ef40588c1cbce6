"""kill switches and the record of backups: two new tables (an expand migration)

``platform_switches`` holds the run-time switches of :mod:`mercato.platform.switches` (no row:
on). ``platform_backups`` records each finished ``mercato db backup`` for the backup-age metric.
New tables only, so the previous release runs on this schema unchanged; the downgrade drops
them (their rows are operational state, not business data: see
docs/runbooks/database-rollback.md).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "platform_switches",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_platform_switches")),
    )
    op.create_table(
        "platform_backups",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_platform_backups")),
    )
    # a new, empty table: a plain CREATE INDEX locks nothing anyone waits for
    op.create_index("ix_platform_backups_finished_at", "platform_backups", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_platform_backups_finished_at", table_name="platform_backups")
    op.drop_table("platform_backups")
    op.drop_table("platform_switches")
