"""outbox: one NOTIFY per inserting statement instead of one per row (PostgreSQL)

Migration 0003's trigger ran once per outbox row and sent that row's ``seq``: a placement,
whose settle statement writes two events, sent two notifications, each a trigger call, a
queue entry at commit and a wake-up of every listening process. The trigger now runs once per
statement and sends the range of sequence numbers the statement inserted, ``first-last``
(``seq`` is taken from a sequence, so another transaction's rows may fall inside the range:
listeners read the range and find only what is there). A statement that inserted nothing
sends nothing.

Listeners read both forms (:mod:`mercato.platform.notify_postgres`); a process of the release
before reads a range as "something changed" and looks for news, as it does on reconnecting,
so the two releases can run side by side during a rollout. The downgrade puts back the
per-row trigger of 0003 (whose function the upgrade leaves in place).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 02:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Keep in step with mercato.platform.notify.OUTBOX_CHANNEL.
_PER_STATEMENT = """
CREATE FUNCTION platform_outbox_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    first_seq bigint;
    last_seq bigint;
BEGIN
    SELECT min(seq), max(seq) INTO first_seq, last_seq FROM inserted;
    IF first_seq IS NOT NULL THEN
        PERFORM pg_notify('mercato_outbox', first_seq::text || '-' || last_seq::text);
    END IF;
    RETURN NULL;
END
$$
"""
_PER_ROW = """
CREATE OR REPLACE FUNCTION platform_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mercato_outbox', NEW.seq::text);
    RETURN NULL;
END
$$
"""


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgres():
        return
    op.execute(_PER_STATEMENT)
    op.execute("DROP TRIGGER IF EXISTS platform_outbox_notify ON platform_outbox")
    # 0003's function stays (nothing calls it): the downgrade's trigger uses it again
    op.execute(
        "CREATE TRIGGER platform_outbox_notify AFTER INSERT ON platform_outbox"
        " REFERENCING NEW TABLE AS inserted"
        " FOR EACH STATEMENT EXECUTE FUNCTION platform_outbox_notify_inserted()"
    )


def downgrade() -> None:
    if not _postgres():
        return
    op.execute(_PER_ROW)
    op.execute("DROP TRIGGER IF EXISTS platform_outbox_notify ON platform_outbox")
    op.execute("DROP FUNCTION IF EXISTS platform_outbox_notify_inserted()")
    op.execute(
        "CREATE TRIGGER platform_outbox_notify AFTER INSERT ON platform_outbox"
        " FOR EACH ROW EXECUTE FUNCTION platform_outbox_notify()"
    )
