"""fewer index writes per placement: active reservations' expiry, no second NATS index

Every placement inserts three reservation rows and settles them (an update that is never HOT:
``state`` is indexed), and writes two outbox rows. Two indexes cost more than they serve:

* ``ix_catalog_reservations_expiry`` on ``(state, expires_at)`` held every reservation, and
  every settle added an entry for the new state. The sweeper only looks for *active*
  reservations that expired: a partial index on ``expires_at WHERE state = 'active'`` serves
  it, gets no entry when a reservation is committed, released or returned, and stays as small
  as the number of open checkouts instead of growing with every reservation ever made.
* ``ix_platform_outbox_nats_unpublished`` on ``(aggregate_id, seq) WHERE nats_published_at IS
  NULL`` served the JetStream claim's check for an earlier event of the same aggregate. That
  check runs only for the few rows a claim picks, and ``ix_platform_outbox_aggregate`` on the
  same columns finds an aggregate's handful of events as quickly, with the predicate checked
  on the rows. While no stream publishes, every outbox row stayed in the partial index.

The new index is built before the old ones go, so the release still running finds its rows
either way; neither statement it sends needs the dropped indexes. On PostgreSQL both steps
run ``CONCURRENTLY`` outside the migration's transaction (as in 0007): both tables are written
by every order. A failed concurrent build can leave an invalid index that ``IF NOT EXISTS``
would keep; drop it (``DROP INDEX CONCURRENTLY <name>``) before running this again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = (
    "ix_catalog_reservations_active",
    "catalog_reservations",
    ["expires_at"],
    "state = 'active'",
)
_EXPIRY = ("ix_catalog_reservations_expiry", "catalog_reservations", ["state", "expires_at"], None)
_NATS = (
    "ix_platform_outbox_nats_unpublished",
    "platform_outbox",
    ["aggregate_id", "seq"],
    "nats_published_at IS NULL",
)
_Index = tuple[str, str, list[str], str | None]


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _create(index: _Index) -> None:
    name, table, columns, where = index
    if not _postgres():
        op.create_index(name, table, columns, sqlite_where=sa.text(where) if where else None)
        return
    with op.get_context().autocommit_block():
        op.create_index(
            name,
            table,
            columns,
            postgresql_where=sa.text(where) if where else None,
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def _drop(index: _Index) -> None:
    name, table = index[0], index[1]
    if not _postgres():
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)


def upgrade() -> None:
    _create(_ACTIVE)
    _drop(_EXPIRY)
    _drop(_NATS)


def downgrade() -> None:
    _create(_NATS)
    _create(_EXPIRY)
    _drop(_ACTIVE)
