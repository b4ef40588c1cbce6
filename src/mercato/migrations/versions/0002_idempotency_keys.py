"""idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 17:04:55.251191
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "platform_idempotency_keys",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", sa.Text(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_platform_idempotency_keys")),
    )
    with op.batch_alter_table("platform_idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_platform_idempotency_keys_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("platform_idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_platform_idempotency_keys_created")

    op.drop_table("platform_idempotency_keys")
