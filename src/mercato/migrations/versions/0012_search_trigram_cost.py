"""catalog search: tell the planner what a trigram comparison costs (PostgreSQL)

pg_trgm declares the functions behind ``<%`` and ``%>`` (word similarity) at the default cost
of 1, the cost of comparing two integers. One call compares every trigram of the query with
every trigram of a product's name: about 9 microseconds here. At that price, the planner
took a sequential scan of every product's name over the name's trigram index whenever the
catalog was small enough for the scan to look cheaper: at 10,000 products, 90 ms of a
search's 110 ms against 5 ms through the index (EXPLAIN ANALYZE, docs/search.md). COST 100
(as PostgreSQL itself declares text search's ``@@`` on text) makes the index the cheaper
plan from a few thousand products on. The costs are properties of the installed extension:
the downgrade gives back pg_trgm's own. Nothing to do without pg_trgm, or on SQLite.

Only the owner of a function may change its cost: where the migrating role does not own
pg_trgm's functions (a managed PostgreSQL whose administrator created the extension), the
migration leaves them alone with a notice instead of failing, and search stays correct, only
slower on small catalogs. The cost belongs to the extension, so ``pg_dump`` does not carry it:
after a restore, run this migration's statements again (docs/runbooks/restore.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 21:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTIONS = ("word_similarity_op(text, text)", "word_similarity_commutator_op(text, text)")


def _cost(cost: int) -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    statements = " ".join(f"ALTER FUNCTION {f} COST {cost};" for f in _FUNCTIONS)
    owned = " AND ".join(
        f"pg_has_role((SELECT proowner FROM pg_proc WHERE oid = '{f}'::regprocedure), 'USAGE')"
        for f in _FUNCTIONS
    )
    op.execute(
        f"""DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
                IF {owned} THEN
                    {statements}
                ELSE
                    RAISE NOTICE 'mercato: the trigram comparison keeps pg_trgm''s cost: the '
                        'migrating role does not own its functions (see docs/search.md)';
                END IF;
            END IF;
        END $$"""
    )


def upgrade() -> None:
    _cost(100)


def downgrade() -> None:
    _cost(1)
