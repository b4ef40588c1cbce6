"""Up, down, up with data: every revision, on both databases, with rows in every table.

Rows of the tables a revision does not create survive its downgrade and its upgrade again
(SQLite's batch mode copies whole tables to change them, so this is not a given there); the
tables it creates are dropped by its downgrade, their rows with them, as the reference's
database rollback table says of an added table. Revisions that rewrite data on upgrade name
the columns they rewrite in :data:`REWRITES`. Search indexes kept as tables (SQLite's FTS5
tables and their shadow tables) are derived from the products by triggers: they are neither
seeded nor compared.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from mercato.migrations import migrate
from mercato.migrations.schema import metadata
from mercato.platform.db import sqlalchemy_url
from tests.e2e.scratch import scratch_database

Snapshot = dict[str, list[tuple[str, ...]]]

# 0004 blanks every stored fingerprint each time it runs: rows survive, those values do not.
REWRITES = {"0004": {"platform_idempotency_keys": {"fingerprint"}}}
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
DERIVED = tuple(metadata.info.get("unmanaged", ()))


def _kept(table: sa.Table) -> bool:
    return table.name != "alembic_version" and not table.name.startswith(DERIVED)


def _value(round_: int, table: sa.Table, column: sa.Column[Any]) -> object:
    """A value for ``column`` that satisfies its type, checks and foreign keys."""
    for fk in column.foreign_keys:
        parent = fk.column
        return _value(round_, parent.table, parent)  # the parent row's value, same round
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, sa.DateTime):
        return NOW
    if isinstance(kind, sa.LargeBinary):
        return b"body"
    if isinstance(kind, sa.Integer):
        return round_ + 1
    text = f"{round_}:{table.name}:{column.name}"
    length = getattr(kind, "length", None)
    return text[-length:] if length else text


def _seed(conn: sa.Connection, round_: int) -> None:
    meta = sa.MetaData()
    meta.reflect(conn)
    for table in meta.sorted_tables:
        if not _kept(table):
            continue
        row = {c.name: _value(round_, table, c) for c in table.columns}
        conn.execute(table.insert().values(**row))


def _snapshot(conn: sa.Connection) -> Snapshot:
    meta = sa.MetaData()
    meta.reflect(conn)
    return {
        table.name: sorted(
            tuple(f"{key}={value!r}" for key, value in row._mapping.items())
            for row in conn.execute(sa.select(table))
        )
        for table in meta.sorted_tables
        if _kept(table)
    }


def _run(url: str, work: Any) -> Any:
    async def go() -> Any:
        engine = create_async_engine(sqlalchemy_url(url))
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _without(snapshot: Snapshot, table: str, columns: set[str]) -> Snapshot:
    """The snapshot with ``columns`` of ``table`` left out (values a revision rewrites)."""
    rows = snapshot.get(table)
    if rows is None:
        return snapshot
    kept = [tuple(v for v in row if v.split("=", 1)[0] not in columns) for row in rows]
    return {**snapshot, table: sorted(kept)}


def _added_columns(seeded: Snapshot, lowered: Snapshot) -> dict[str, set[str]]:
    """Per table that both snapshots have, the columns only ``seeded`` has."""
    added = {}
    for table, rows in lowered.items():
        before = {v.split("=", 1)[0] for v in seeded[table][0]}
        after = {v.split("=", 1)[0] for v in rows[0]} if rows else before
        if before - after:
            added[table] = before - after
    return added


def _comparable(snapshot: Snapshot, revision: str) -> Snapshot:
    for table, columns in REWRITES.get(revision, {}).items():
        snapshot = _without(snapshot, table, columns)
    return snapshot


def test_every_revision_goes_up_down_and_up_again_keeping_the_rows_it_should(
    backend: str, tmp_path: Path
) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite:///unused"))
    revisions = list(reversed(list(script.walk_revisions())))
    with scratch_database(backend, tmp_path, "updown") as url:
        for round_, revision in enumerate(revisions):
            migrate.upgrade(url, revision.revision)
            _run(url, lambda conn, r=round_: _seed(conn, r))
            seeded = _run(url, _snapshot)
            assert all(seeded.values()), "every table has rows"

            down = revision.down_revision if isinstance(revision.down_revision, str) else "base"
            migrate.downgrade(url, down)
            lowered = _run(url, _snapshot)
            created = set(seeded) - set(lowered)  # the tables this revision adds
            added = _added_columns(seeded, lowered)  # and the columns it adds to others
            for table, rows in lowered.items():
                expected = _without(seeded, table, added.get(table, set()))[table]
                assert rows == expected, f"{revision.revision} down: {table} lost rows"

            migrate.upgrade(url, revision.revision)
            again = _run(url, _snapshot)
            assert set(again) == set(seeded)
            for table in created:
                assert again[table] == [], f"{revision.revision}: {table} is new, so empty"
            survivors = {t: rows for t, rows in seeded.items() if t not in created}
            for table, columns in added.items():
                # an added column's values went with its downgrade: empty again, not restored
                assert all(f"{c}=None" in row for row in again[table] for c in columns)
                survivors = _without(survivors, table, columns)
                again = _without(again, table, columns)
            assert _comparable({t: again[t] for t in survivors}, revision.revision) == (
                _comparable(survivors, revision.revision)
            ), f"{revision.revision} up again changed rows"
        assert migrate.current(url) == migrate.head()
