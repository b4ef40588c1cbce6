"""Which database schemas this build may serve.

A build declares the oldest schema it runs on (``OLDEST_SCHEMA``) and the newest it was tested
with (the head of the migrations it ships). Replicas never migrate: a migration Job runs once
per release, and a replica starts once the schema is at least ``OLDEST_SCHEMA``. A schema newer
than this build's head is accepted: that is a rollback after a newer release migrated, and
every regular (expand) migration keeps the previous release working; the destructive ones are
post-deploy (contract) migrations, run a release later (docs/runbooks/database-rollback.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from alembic.script import ScriptDirectory

# The oldest revision this build's code runs on: raise it when the code starts to need a
# table or column that a migration adds (0008: the webhooks tables, which the outbox relay
# writes deliveries to for every event).
OLDEST_SCHEMA = "0008"


class Standing(StrEnum):
    """Where the database stands relative to this build."""

    EMPTY = "empty"  # nothing was ever migrated
    BEHIND = "behind"  # older than OLDEST_SCHEMA: run the migration Job first
    COMPATIBLE = "compatible"  # between OLDEST_SCHEMA and this build's head
    NEWER = "newer"  # a revision this build does not know: a newer release migrated


@dataclass(frozen=True)
class Verdict:
    """Whether this build may serve a database at ``current``, and why."""

    current: str | None
    standing: Standing
    oldest: str
    newest: str

    @property
    def may_serve(self) -> bool:
        """True for a compatible or newer schema."""
        return self.standing in (Standing.COMPATIBLE, Standing.NEWER)

    def describe(self) -> str:
        """One line for people and logs."""
        span = f"this build runs on {self.oldest}..{self.newest}"
        if self.standing is Standing.EMPTY:
            return f"no migrations applied; {span}; run the migration Job ('mercato db upgrade')"
        if self.standing is Standing.BEHIND:
            return (
                f"database at {self.current}, older than {self.oldest}; {span}; "
                "run the migration Job ('mercato db upgrade')"
            )
        if self.standing is Standing.NEWER:
            return f"database at {self.current}, newer than this build ({span}): serving"
        return f"database at {self.current}; {span}: serving"


def revision_order(script: ScriptDirectory) -> list[str]:
    """The revisions this build ships, oldest first (the history is linear)."""
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def assess(current: str | None, script: ScriptDirectory, oldest: str = OLDEST_SCHEMA) -> Verdict:
    """Judge a database at revision ``current`` against the migrations in ``script``."""
    order = revision_order(script)
    newest = order[-1]
    if current is None:
        standing = Standing.EMPTY
    elif current not in order:
        standing = Standing.NEWER
    elif order.index(current) < order.index(oldest):
        standing = Standing.BEHIND
    else:
        standing = Standing.COMPATIBLE
    return Verdict(current, standing, oldest, newest)
