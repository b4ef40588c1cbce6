"""throttle: failed-attempt counters shared by every process (brute-force protection)

One row per (kind, subject) with the failures in its current window; ``mercato.platform.
throttle`` counts them with one upsert per attempt and the ``throttle-purger`` worker deletes
rows whose window has ended (hence the index). A new table, so plain DDL on both databases.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 15:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "platform_throttle",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject", name=op.f("pk_platform_throttle")),
    )
    with op.batch_alter_table("platform_throttle", schema=None) as batch_op:
        batch_op.create_index(
            "ix_platform_throttle_window_ends_at", ["window_ends_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("platform_throttle", schema=None) as batch_op:
        batch_op.drop_index("ix_platform_throttle_window_ends_at")

    op.drop_table("platform_throttle")
