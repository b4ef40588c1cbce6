"""Webhook persistence: endpoints (an aggregate), their deliveries and each delivery's attempts.

Deliveries are claimed by the dispatcher with a lease (``claimed_until``): a claim is one
guarded ``UPDATE ... WHERE claimed_until`` has expired, so two processes never send the same
delivery at once, and a process that dies mid-request leaves it to be retried when the lease
runs out. A claim takes at most ``per_endpoint`` deliveries of one endpoint, counting those
already in flight anywhere, so one slow endpoint cannot fill the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mercato.platform.db import sql
from mercato.platform.uow import Repository
from mercato.webhooks.domain import Attempt, Delivery, DeliveryStatus, DisabledReason
from mercato.webhooks.store.tables import attempts, deliveries, delivery_from_row, endpoints


@dataclass(frozen=True, slots=True)
class Target:
    """An enabled endpoint as the dispatcher needs it."""

    url: str
    secret: str
    failing: bool


_e, _d, _a = endpoints.c, deliveries.c, attempts.c
_id: sa.BindParameter[str] = sa.bindparam("id")
_now: sa.BindParameter[datetime] = sa.bindparam("now")
_ENQUEUE = sql(
    sa.insert(deliveries).from_select(
        [
            "id",
            "endpoint_id",
            "event_seq",
            "event_type",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
            "updated_at",
        ],
        sa.select(
            sa.bindparam("id", type_=sa.String),
            sa.bindparam("endpoint_id", type_=sa.String),
            sa.bindparam("event_seq", type_=sa.BigInteger),
            sa.bindparam("event_type", type_=sa.String),
            sa.bindparam("payload", type_=sa.Text),
            sa.literal(DeliveryStatus.PENDING.value),
            sa.literal(0),
            sa.bindparam("now", type_=sa.DateTime(timezone=True)),
            sa.bindparam("now", type_=sa.DateTime(timezone=True)),
            sa.bindparam("now", type_=sa.DateTime(timezone=True)),
        ).where(
            ~sa.exists().where(
                _d.endpoint_id == sa.bindparam("endpoint_id"),
                _d.event_seq == sa.bindparam("event_seq"),
            )
        ),
    )
)
_busy = deliveries.alias("busy")
# requests in flight per endpoint, in any process: counted once per claim, not once per row
_in_flight = (
    sa.select(_busy.c.endpoint_id, sa.func.count().label("n"))
    .where(_busy.c.status == DeliveryStatus.PENDING.value, _busy.c.claimed_until >= _now)
    .group_by(_busy.c.endpoint_id)
    .subquery()
)
_due = (
    sa.select(
        _d.id,
        _d.next_attempt_at,
        sa.func.row_number()
        .over(partition_by=_d.endpoint_id, order_by=(_d.next_attempt_at, _d.id))
        .label("rank"),
        sa.func.coalesce(_in_flight.c.n, 0).label("in_flight"),
    )
    .select_from(deliveries.outerjoin(_in_flight, _in_flight.c.endpoint_id == _d.endpoint_id))
    .where(
        _d.status == DeliveryStatus.PENDING.value,
        _d.next_attempt_at <= _now,
        sa.or_(_d.claimed_until.is_(None), _d.claimed_until < _now),
        _d.endpoint_id.in_(sa.select(_e.id).where(_e.enabled.is_(True))),
    )
    .subquery()
)
_claimable = (
    sa.select(_due.c.id)
    .where(_due.c.rank + _due.c.in_flight <= sa.bindparam("per_endpoint"))
    .order_by(_due.c.next_attempt_at)
    .limit(sa.bindparam("limit"))
)
# The lease is re-checked by the UPDATE itself: of two processes that chose the same row, the
# second finds it claimed (PostgreSQL re-evaluates the WHERE after waiting for the row lock).
_CLAIM = sql(
    sa.update(deliveries)
    .where(
        _d.id.in_(_claimable.scalar_subquery()),
        sa.or_(_d.claimed_until.is_(None), _d.claimed_until < _now),
    )
    .values(claimed_until=sa.bindparam("until"))
    .returning(*deliveries.c)
)
_TARGETS = sql(sa.select(_e.id, _e.url, _e.secret, _e.failing_since).where(_e.enabled.is_(True)))
_RECORD = sql(
    sa.update(deliveries)
    .where(_d.id == _id, _d.attempts == sa.bindparam("expected"))
    .values(
        status=sa.bindparam("status"),
        attempts=sa.bindparam("attempts"),
        next_attempt_at=sa.bindparam("next_attempt_at"),
        claimed_until=None,
        last_status_code=sa.bindparam("status_code"),
        last_error=sa.bindparam("error"),
        updated_at=_now,
    )
)
_ADD_ATTEMPT = sql(sa.insert(attempts).values({c.name: sa.bindparam(c.name) for c in attempts.c}))
_FAILING_FROM = sql(
    sa.update(endpoints)
    .where(_e.id == _id, _e.failing_since.is_(None), _e.enabled.is_(True))
    .values(failing_since=_now)
)
_HEALTHY = sql(
    sa.update(endpoints)
    .where(_e.id == _id, _e.failing_since.is_not(None))
    .values(failing_since=None)
)
_DISABLE = sql(
    sa.update(endpoints)
    .where(_e.id == _id, _e.enabled.is_(True))
    .values(enabled=False, disabled_reason=sa.bindparam("reason"), version=_e.version + 1)
    .returning(_e.url, _e.failing_since)
)
_FAILING_SINCE = sql(sa.select(_e.failing_since).where(_e.id == _id))
_DELIVERY = sql(sa.select(deliveries).where(_d.id == _id, _d.endpoint_id == sa.bindparam("ep")))
_DELIVERY_PAGE = sql(
    sa.select(deliveries)
    .where(_d.endpoint_id == sa.bindparam("ep"), _d.id < sa.bindparam("before"))
    .order_by(_d.id.desc())
    .limit(sa.bindparam("limit"))
)
_ATTEMPTS = sql(sa.select(attempts).where(_a.delivery_id == _id).order_by(_a.number))
_REPLAY = sql(
    sa.update(deliveries)
    .where(_d.id == _id, _d.endpoint_id == sa.bindparam("ep"))
    .values(
        status=DeliveryStatus.PENDING.value,
        next_attempt_at=_now,
        claimed_until=None,
        updated_at=_now,
    )
)
# Ids are UUIDv7 strings, so any value above every id lists from the newest.
_AFTER_ALL = "~"


class DeliveryRepository(Repository):
    """Deliveries and their attempts: enqueued by the relay, claimed by the dispatcher."""

    __slots__ = ()

    async def enqueue(self, rows: list[dict[str, object]]) -> None:
        """Pending deliveries (``id``, ``endpoint_id``, ``event_seq``, ``event_type``,
        ``payload``, ``now``), each unless its endpoint already has one for that event."""
        if rows:
            await self.conn.executemany(_ENQUEUE, rows)

    async def claim(
        self, *, now: datetime, until: datetime, limit: int, per_endpoint: int
    ) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries of enabled endpoints until ``until``."""
        rows = await self.conn.fetch(
            _CLAIM, now=now, until=until, limit=limit, per_endpoint=per_endpoint
        )
        return sorted((delivery_from_row(r) for r in rows), key=lambda d: d.id)

    async def targets(self) -> dict[str, Target]:
        """Where each enabled endpoint's deliveries go, by endpoint id."""
        rows = await self.conn.fetch(_TARGETS)
        return {
            r["id"]: Target(r["url"], r["secret"], failing=r["failing_since"] is not None)
            for r in rows
        }

    async def record(
        self,
        delivery: Delivery,
        attempt: Attempt,
        *,
        status: DeliveryStatus,
        next_attempt_at: datetime | None,
    ) -> bool:
        """Store an attempt and the delivery's new state; False if another process did first."""
        changed = await self.conn.execute(
            _RECORD,
            id=delivery.id,
            expected=delivery.attempts,
            status=status.value,
            attempts=attempt.number,
            next_attempt_at=next_attempt_at,
            status_code=attempt.status_code,
            error=attempt.error,
            now=attempt.at,
        )
        if changed != 1:
            return False
        await self.conn.execute(
            _ADD_ATTEMPT,
            delivery_id=delivery.id,
            number=attempt.number,
            at=attempt.at,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
        )
        return True

    async def endpoint_succeeded(self, endpoint_id: str) -> None:
        """The endpoint answered: it is no longer failing."""
        await self.conn.execute(_HEALTHY, id=endpoint_id)

    async def endpoint_failed(self, endpoint_id: str, now: datetime) -> datetime | None:
        """Note the endpoint failing from ``now`` (unless it already was); since when it fails."""
        await self.conn.execute(_FAILING_FROM, id=endpoint_id, now=now)
        return await self.conn.fetchval(_FAILING_SINCE, id=endpoint_id)  # type: ignore[no-any-return]

    async def disable_endpoint(
        self, endpoint_id: str, reason: DisabledReason
    ) -> tuple[str, datetime | None] | None:
        """Disable an enabled endpoint; its URL and failing_since, or None if it was not."""
        row = await self.conn.fetchrow(_DISABLE, id=endpoint_id, reason=reason.value)
        return None if row is None else (row["url"], row["failing_since"])

    async def get(self, endpoint_id: str, delivery_id: str) -> Delivery | None:
        """One delivery of an endpoint."""
        row = await self.conn.fetchrow(_DELIVERY, id=delivery_id, ep=endpoint_id)
        return None if row is None else delivery_from_row(row)

    async def page(self, endpoint_id: str, *, before: str | None, limit: int) -> list[Delivery]:
        """Up to ``limit`` of the endpoint's deliveries, newest first, older than ``before``."""
        rows = await self.conn.fetch(
            _DELIVERY_PAGE, ep=endpoint_id, before=before or _AFTER_ALL, limit=limit
        )
        return [delivery_from_row(r) for r in rows]

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        """A delivery's attempts, first first."""
        rows = await self.conn.fetch(_ATTEMPTS, id=delivery_id)
        return [
            Attempt(r["number"], r["at"], r["status_code"], r["error"], r["duration_ms"])
            for r in rows
        ]

    async def replay(self, endpoint_id: str, delivery_id: str, now: datetime) -> bool:
        """Make a delivery due again now, whatever its status; False if there is none."""
        return await self.conn.execute(_REPLAY, id=delivery_id, ep=endpoint_id, now=now) == 1
