"""idempotency keys: forget the fingerprints stored unkeyed

Fingerprints of idempotent requests used to be plain SHA-256 hashes of the request, which for a
checkout includes the card number: with the last four digits stored beside the payment, the
number could be found again by trying every candidate. Fingerprints are now HMACs keyed with a
server secret. This revision blanks every fingerprint stored before; a blank fingerprint
matches any repeat of its key, so a key stored before the upgrade still replays its answer
until it is purged (24 hours by default). The old hashes cannot be brought back: the downgrade
leaves the rows as they are, and a downgraded build answers a repeat of such a key with 422.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    keys = sa.table("platform_idempotency_keys", sa.column("fingerprint", sa.String(64)))
    op.execute(keys.update().values(fingerprint=""))


def downgrade() -> None:
    pass  # the unkeyed hashes are gone for good, which is the point
