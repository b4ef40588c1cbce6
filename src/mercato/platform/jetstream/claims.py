"""The NATS relay's statements on the outbox: claim a batch, mark it published, release it.

A batch is claimed with a random token and a lease. A row is claimable when JetStream has not
acknowledged it, no live lease holds it, and no *earlier* unacknowledged row of the same
aggregate is held by another batch's live lease, so two relays never have events of one
aggregate in flight at once. Claims are serialised (an advisory transaction lock on PostgreSQL;
SQLite's writes are serial anyway), so each claim sees every earlier claim committed: a batch
may hold several events of one aggregate, oldest first. Marking is one statement for the whole
acknowledged batch: release the few that failed first, then mark every row still holding the
token.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa

from mercato.kernel.clock import utcnow
from mercato.platform.db import Connection, Database, Row, sql
from mercato.platform.outbox import OutboxEvent, outbox

# pg_advisory_xact_lock key of the claim: "NATS" in ASCII
_CLAIM_LOCK = "SELECT pg_advisory_xact_lock(1312904275)"

# The oldest unacknowledged, unheld rows first (the partial index on seq makes this a short
# scan however long the backlog), then only among those the check of earlier rows.
_candidates = (
    sa.select(outbox.c.seq, outbox.c.aggregate_id)
    .where(
        outbox.c.nats_published_at.is_(None),
        sa.or_(
            outbox.c.nats_claimed_until.is_(None),
            outbox.c.nats_claimed_until < sa.bindparam("now"),
        ),
    )
    .order_by(outbox.c.seq)
    .limit(sa.bindparam("limit"))
    .subquery("candidate")
)
_earlier = outbox.alias("earlier")
_claimable = sa.select(_candidates.c.seq).where(
    ~sa.exists().where(
        _earlier.c.aggregate_id == _candidates.c.aggregate_id,
        _earlier.c.nats_published_at.is_(None),
        _earlier.c.seq < _candidates.c.seq,
        _earlier.c.nats_claimed_until >= sa.bindparam("now"),
    )
)
_CLAIM = sql(
    sa.update(outbox)
    .where(outbox.c.seq.in_(_claimable.scalar_subquery()))
    .values(nats_claim=sa.bindparam("token"), nats_claimed_until=sa.bindparam("until"))
    .returning(
        outbox.c.seq,
        outbox.c.aggregate_type,
        outbox.c.aggregate_id,
        outbox.c.event_type,
        outbox.c.payload,
        outbox.c.occurred_at,
    )
)
_RELEASE = sql(
    sa.update(outbox)
    .where(outbox.c.seq == sa.bindparam("seq"), outbox.c.nats_claim == sa.bindparam("token"))
    .values(nats_claim=None, nats_claimed_until=None)
)
_RELEASE_ALL = sql(
    sa.update(outbox)
    .where(
        outbox.c.seq.between(sa.bindparam("low"), sa.bindparam("high")),
        outbox.c.nats_claim == sa.bindparam("token"),
    )
    .values(nats_claim=None, nats_claimed_until=None)
)
_MARK = sql(
    sa.update(outbox)
    .where(
        outbox.c.seq.between(sa.bindparam("low"), sa.bindparam("high")),
        outbox.c.nats_claim == sa.bindparam("token"),
    )
    .values(nats_published_at=sa.bindparam("at"), nats_claim=None, nats_claimed_until=None)
)
_LAG = sql(
    sa.select(sa.func.count(), sa.func.min(outbox.c.occurred_at)).where(
        outbox.c.nats_published_at.is_(None)
    )
)


class Batch:
    """Outbox rows claimed for JetStream under one token."""

    def __init__(self, token: str, events: list[OutboxEvent]) -> None:
        self.token = token
        self.events = events


async def claim(db: Database, *, limit: int, lease_s: float, postgres: bool) -> Batch:
    """Claim up to ``limit`` rows, oldest first, under a new token."""
    token = uuid.uuid4().hex
    now = utcnow()
    until = now + timedelta(seconds=lease_s)
    async with db.transaction() as conn:
        if postgres:
            await conn.execute_text(_CLAIM_LOCK)
        rows = await conn.fetch(_CLAIM, now=now, limit=limit, until=until, token=token)
    events = sorted((OutboxEvent.from_row(r) for r in rows), key=lambda e: e.seq)
    return Batch(token, events)


async def settle(db: Database, batch: Batch, acked: list[int]) -> None:
    """Mark the acknowledged rows published and free the others for the next batch."""
    done = set(acked)
    failed = [e.seq for e in batch.events if e.seq not in done]
    async with db.transaction() as conn:
        if not acked:  # the broker took nothing: free the whole batch at once
            low, high = batch.events[0].seq, batch.events[-1].seq
            await conn.execute(_RELEASE_ALL, low=low, high=high, token=batch.token)
            return
        await _release(conn, batch.token, failed)
        await conn.execute(_MARK, low=min(acked), high=max(acked), token=batch.token, at=utcnow())


async def _release(conn: Connection, token: str, seqs: list[int]) -> None:
    if seqs:
        await conn.executemany(_RELEASE, [{"seq": seq, "token": token} for seq in seqs])


async def lag(db: Database) -> tuple[int, datetime | None]:
    """How many events JetStream has not acknowledged, and when the oldest happened."""
    async with db.connection() as conn:
        row: Row | None = await conn.fetchrow(_LAG)
    assert row is not None
    count, oldest = list(row.values())
    if isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest)
    return int(count), oldest
