"""The transactional outbox: events written with the change that caused them, relayed after.

The unit of work inserts one row per domain event in the same transaction as the aggregate's
change, so an event exists if and only if its change committed. The relay worker claims
unpublished rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several replicas can relay at
once), hands each to the in-process subscribers, then marks it published. Delivery is
at-least-once and in order per aggregate: a row is only claimed when no earlier row of the same
aggregate is still unpublished. Subscribers must therefore be idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from mercato.kernel.clock import utcnow
from mercato.kernel.events import DomainEvent
from mercato.platform.db import Connection, Database, Row, metadata, sql

log = logging.getLogger("mercato.outbox")

outbox = sa.Table(
    "platform_outbox",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("aggregate_type", sa.String(40), nullable=False),
    sa.Column("aggregate_id", sa.String(36), nullable=False),
    sa.Column("event_type", sa.String(60), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    # JetStream's own progress (mercato.platform.jetstream), apart from the in-process relay's
    sa.Column("nats_published_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("nats_claim", sa.String(32), nullable=True),
    sa.Column("nats_claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Index(
        "ix_platform_outbox_unpublished",
        "aggregate_id",
        "seq",
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    ),
    sa.Index(
        "ix_platform_outbox_nats_pending",
        "seq",
        postgresql_where=sa.text("nats_published_at IS NULL"),
        sqlite_where=sa.text("nats_published_at IS NULL"),
    ),
    # One aggregate's history, in order: replayed to clients that follow an order, and where
    # the JetStream claim looks for an earlier unacknowledged event of the same aggregate.
    sa.Index("ix_platform_outbox_aggregate", "aggregate_id", "seq"),
    sqlite_autoincrement=True,  # never reuse a sequence number: clients resume streams by it
)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """An event as stored in the outbox and handed to subscribers."""

    seq: int
    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload: dict[str, Any]
    occurred_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> OutboxEvent:
        """Map an outbox row."""
        return cls(
            seq=row["seq"],
            aggregate_type=row["aggregate_type"],
            aggregate_id=row["aggregate_id"],
            event_type=row["event_type"],
            payload=orjson.loads(row["payload"]),
            occurred_at=row["occurred_at"],
        )


# inline(): an append needs no generated seq back, so no RETURNING on the order hot path
_INSERT = sql(
    sa.insert(outbox)
    .inline()
    .values(
        aggregate_type=sa.bindparam("aggregate_type"),
        aggregate_id=sa.bindparam("aggregate_id"),
        event_type=sa.bindparam("event_type"),
        payload=sa.bindparam("payload"),
        occurred_at=sa.bindparam("occurred_at"),
    )
)


def encode(event: DomainEvent) -> str:
    """An event's payload as stored: its fields as JSON (``DomainEvent.payload``'s mapping).

    orjson reads a dataclass's fields itself, forty times faster than building the mapping
    with ``dataclasses.asdict`` first (which copies every nested value).
    """
    return orjson.dumps(event).decode()


def columns(events: Iterable[DomainEvent]) -> dict[str, list[str]]:
    """Outbox rows as one list per column (without ``occurred_at``), in the events' order: for
    a statement that inserts them with ``unnest`` as part of a larger change."""
    kinds: list[str] = []
    ids: list[str] = []
    names: list[str] = []
    payloads: list[str] = []
    for e in events:
        kinds.append(e.aggregate_type)
        ids.append(e.aggregate_id)
        names.append(e.event_type)
        payloads.append(encode(e))
    return {
        "aggregate_types": kinds,
        "aggregate_ids": ids,
        "event_types": names,
        "payloads": payloads,
    }


async def append(conn: Connection, events: Iterable[DomainEvent]) -> int:
    """Write events to the outbox inside the caller's transaction; returns how many."""
    now = utcnow()
    rows = [
        {
            "aggregate_type": e.aggregate_type,
            "aggregate_id": e.aggregate_id,
            "event_type": e.event_type,
            "payload": encode(e),
            "occurred_at": now,
        }
        for e in events
    ]
    await conn.executemany(_INSERT, rows)
    return len(rows)


_earlier = outbox.alias("earlier")
_claimable = (
    sa.select(outbox.c.seq)
    .where(
        outbox.c.published_at.is_(None),
        sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < sa.bindparam("now")),
        ~sa.exists().where(
            _earlier.c.aggregate_id == outbox.c.aggregate_id,
            _earlier.c.published_at.is_(None),
            _earlier.c.seq < outbox.c.seq,
        ),
    )
    .order_by(outbox.c.seq)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_CLAIM = sql(
    sa.update(outbox)
    .where(outbox.c.seq.in_(_claimable.scalar_subquery()))
    .values(claimed_until=sa.bindparam("until"))
    .returning(*outbox.c)
)
_MARK_PUBLISHED = sql(
    sa.update(outbox)
    .where(outbox.c.seq == sa.bindparam("seq"))
    .values(published_at=sa.bindparam("at"), claimed_until=None)
)
_BACKLOG = sql(
    sa.select(sa.func.count(), sa.func.min(outbox.c.occurred_at)).where(
        outbox.c.published_at.is_(None)
    )
)

Subscriber = Callable[[OutboxEvent], Awaitable[None]]


class EventBus:
    """In-process subscribers by event type ('*' receives every event)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def subscribe(self, event_type: str, handler: Subscriber) -> None:
        """Call ``handler`` for every relayed event of this type."""
        self._subscribers.setdefault(event_type, []).append(handler)

    async def dispatch(self, event: OutboxEvent) -> None:
        """Hand one event to its subscribers, in subscription order."""
        for handler in (
            *self._subscribers.get(event.event_type, ()),
            *self._subscribers.get("*", ()),
        ):
            await handler(event)


class OutboxRelay:
    """The worker that moves outbox rows to subscribers. See the module docstring."""

    name = "outbox-relay"

    def __init__(
        self, db: Database, bus: EventBus, *, batch: int = 100, lease_s: float = 30
    ) -> None:
        self.db = db
        self.bus = bus
        self.batch = batch
        self.lease = timedelta(seconds=lease_s)

    async def run_once(self) -> int:
        """Claim, dispatch and mark one batch; returns how many events were published."""
        now = utcnow()
        async with self.db.transaction() as conn:
            rows = await conn.fetch(_CLAIM, now=now, limit=self.batch, until=now + self.lease)
        published = 0
        for event in sorted((OutboxEvent.from_row(r) for r in rows), key=lambda e: e.seq):
            try:
                await self.bus.dispatch(event)
            except Exception:
                # Left claimed; its lease expires and it is retried, still before later events.
                log.exception(
                    "subscriber failed for outbox event %s (%s)", event.seq, event.event_type
                )
                continue
            async with self.db.transaction() as conn:
                await conn.execute(_MARK_PUBLISHED, seq=event.seq, at=utcnow())
            published += 1
        return published


async def backlog(db: Database) -> tuple[int, datetime | None]:
    """How many events are unpublished, and when the oldest of them happened."""
    async with db.connection() as conn:
        row = await conn.fetchrow(_BACKLOG)
    assert row is not None
    values = list(row.values())
    oldest = values[1]
    if isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest)
    return int(values[0]), oldest
