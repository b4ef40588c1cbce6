"""outbox for followers: an index on each aggregate's history; NOTIFY on insert (PostgreSQL)

Clients following one order replay its events by ``aggregate_id`` and ``seq``: the index makes
that a range scan on both databases (the existing index covers unpublished rows only).

Every process serving real-time clients LISTENs on ``mercato_outbox`` with one connection
(:mod:`mercato.platform.notify_postgres`). The trigger sends the new row's ``seq`` as payload
inside the inserting transaction, so the notification costs no extra round trip on the write
path and is delivered only if, and when, the transaction commits. SQLite has no NOTIFY: there
one process serves and is woken in-process, so the trigger is created on PostgreSQL only and the
two schemas stay the same for ``alembic check`` (which does not compare triggers).

On PostgreSQL the index is built ``CONCURRENTLY`` (outside the migration's transaction): the
outbox is written by every order, and a plain ``CREATE INDEX`` would block those writes for as
long as the build takes. ``IF NOT EXISTS`` lets a failed run be repeated; a concurrent build
that fails can leave an *invalid* index behind, which the repeat would keep: after such a
failure, ``DROP INDEX CONCURRENTLY ix_platform_outbox_aggregate`` before running it again
(``SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_platform_outbox_aggregate'::regclass``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Keep in step with mercato.platform.notify.OUTBOX_CHANNEL.
_CREATE_FUNCTION = """
CREATE FUNCTION platform_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mercato_outbox', NEW.seq::text);
    RETURN NULL;
END
$$
"""
_CREATE_TRIGGER = """
CREATE TRIGGER platform_outbox_notify AFTER INSERT ON platform_outbox
FOR EACH ROW EXECUTE FUNCTION platform_outbox_notify()
"""


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgres():
        with op.batch_alter_table("platform_outbox", schema=None) as batch_op:
            batch_op.create_index("ix_platform_outbox_aggregate", ["aggregate_id", "seq"])
        return
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_platform_outbox_aggregate",
            "platform_outbox",
            ["aggregate_id", "seq"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
    op.execute(_CREATE_FUNCTION)
    op.execute(_CREATE_TRIGGER)


def downgrade() -> None:
    if not _postgres():
        with op.batch_alter_table("platform_outbox", schema=None) as batch_op:
            batch_op.drop_index("ix_platform_outbox_aggregate")
        return
    op.execute("DROP TRIGGER IF EXISTS platform_outbox_notify ON platform_outbox")
    op.execute("DROP FUNCTION IF EXISTS platform_outbox_notify()")
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_platform_outbox_aggregate",
            table_name="platform_outbox",
            postgresql_concurrently=True,
            if_exists=True,
        )
