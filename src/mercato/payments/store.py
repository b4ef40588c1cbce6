"""Payment persistence. The partial unique index is what makes a double charge impossible."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from datetime import datetime
from typing import cast

import sqlalchemy as sa

from mercato.kernel.money import Money
from mercato.payments.domain import AlreadyPaid, Payment, PaymentMoved, PaymentNotFound, Status
from mercato.platform.db import Row, UniqueViolation, metadata, sql
from mercato.platform.uow import TrackingRepository

_LIVE = "status IN ('pending', 'captured', 'refunded')"

payments = sa.Table(
    "payments_payments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("order_id", sa.String(36), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("provider", sa.String(40), nullable=False),
    sa.Column("idempotency_key", sa.String(80), nullable=False, unique=True),
    sa.Column("card_last4", sa.String(4), nullable=False),
    sa.Column("provider_reference", sa.String(100), nullable=False),
    sa.Column("failure_reason", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
    sa.Index(
        "uq_payments_payments_live_order",
        "order_id",
        unique=True,
        postgresql_where=sa.text(_LIVE),
        sqlite_where=sa.text(_LIVE),
    ),
    sa.Index("ix_payments_payments_order", "order_id", "created_at"),
    sa.Index("ix_payments_payments_status", "status", "created_at"),
)

_c = payments.c
_bind = sa.bindparam
_INSERT = sql(sa.insert(payments).values({c.name: _bind(c.name) for c in payments.c}))
_BY_ID = sql(sa.select(payments).where(_c.id == _bind("id")).with_for_update())
_FOR_ORDER = sql(sa.select(payments).where(_c.order_id == _bind("order_id")).order_by(_c.id))
_CAPTURED_FOR_ORDER = sql(
    sa.select(payments).where(_c.order_id == _bind("order_id"), _c.status == Status.CAPTURED.value)
)
# The status guard is a filter on the row the primary key finds, never an index condition: as
# "status = $2" PostgreSQL may reach the row through the status index instead and visit every
# payment of that status (all the pending ones, when they pile up unsettled). status is NOT
# NULL, so IS NOT DISTINCT FROM is the same test.
_UPDATE = sql(
    sa.update(payments)
    .where(_c.id == _bind("id"), _c.status.is_not_distinct_from(_bind("expected_status")))
    .values(
        status=_bind("status"),
        card_last4=_bind("card_last4"),
        provider_reference=_bind("provider_reference"),
        failure_reason=_bind("failure_reason"),
        updated_at=_bind("updated_at"),
    )
)
# what a save may change: the status, and what the provider's answer tells
_IMMUTABLE = ("order_id", "amount", "currency", "provider", "idempotency_key", "created_at")
_PENDING_BEFORE = sql(
    sa.select(payments)
    .where(_c.status == Status.PENDING.value, _c.created_at < _bind("before"))
    .order_by(_c.created_at)
    .limit(_bind("limit"))
)

_FAILED_SINCE = sql(
    sa.select(sa.func.count())
    .select_from(payments)
    .where(_c.status == Status.FAILED.value, _c.updated_at >= _bind("since"))
)


def payment_row(payment: Payment) -> dict[str, object]:
    """The ``payments_payments`` row of a payment."""
    return {
        "id": payment.id,
        "order_id": payment.order_id,
        "amount": payment.amount.amount,
        "currency": payment.amount.currency,
        "status": payment.status.value,
        "provider": payment.provider,
        "idempotency_key": payment.idempotency_key,
        "card_last4": payment.card_last4,
        "provider_reference": payment.provider_reference,
        "failure_reason": payment.failure_reason,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
    }


def payment_from_row(row: Row) -> Payment:
    """The payment a ``payments_payments`` row holds."""
    return Payment(
        id=row["id"],
        order_id=row["order_id"],
        amount=Money(row["amount"], row["currency"]),
        status=Status(row["status"]),
        provider=row["provider"],
        idempotency_key=row["idempotency_key"],
        card_last4=row["card_last4"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        provider_reference=row["provider_reference"],
        failure_reason=row["failure_reason"],
    )


class PaymentRepository(TrackingRepository[Payment]):
    """Payments; a save is guarded by the status the payment was loaded with (a payment moves
    only forward, so a status still as loaded means no one else moved it)."""

    __slots__ = ()

    async def get(self, payment_id: str) -> Payment:
        """The payment (PaymentNotFound if none), row-locked until the transaction ends."""
        row = await self.conn.fetchrow(_BY_ID, id=payment_id)
        if row is None:
            raise PaymentNotFound(payment_id)
        return self._track(payment_from_row(row))

    async def add(self, payment: Payment) -> None:
        """Insert a pending payment; AlreadyPaid if the order has a live payment already."""
        try:
            await self.conn.execute(_INSERT, **payment_row(payment))
        except UniqueViolation as exc:
            # PostgreSQL names the index, SQLite the column
            if exc.mentions("live_order") or exc.mentions("payments_payments.order_id"):
                raise AlreadyPaid(payment.order_id) from None
            raise
        self._track_new(payment)

    def attach(self, payment: Payment) -> Payment:
        """A copy of a payment an earlier unit of work loaded, tracked with its status then.

        Saving the copy writes it only if the row still holds that status; the original is
        left as it was, whatever becomes of the copy.
        """
        return self._track(dataclasses.replace(payment))

    async def save_unless_moved(self, payment: Payment) -> bool:
        """Save the payment; False (and the copy forgotten) if its row moved since it was
        loaded, where :meth:`save` would raise."""
        if await self._write(payment, expected=self.loaded_token(payment)):
            self._track(payment)
            return True
        del self._tracked[id(payment)]
        return False

    async def for_order(self, order_id: str) -> list[Payment]:
        """Every payment attempt of an order, oldest first."""
        rows = await self.conn.fetch(_FOR_ORDER, order_id=order_id)
        return [self._track(payment_from_row(r)) for r in rows]

    async def captured_for_order(self, order_id: str) -> Payment | None:
        """The order's captured (not yet refunded) payment, if any."""
        row = await self.conn.fetchrow(_CAPTURED_FOR_ORDER, order_id=order_id)
        return None if row is None else self._track(payment_from_row(row))

    async def pending_before(self, before: datetime, *, limit: int) -> list[Payment]:
        """Pending payments opened before a moment (candidates for reconciliation)."""
        rows = await self.conn.fetch(_PENDING_BEFORE, before=before, limit=limit)
        return [self._track(payment_from_row(r)) for r in rows]

    def _token(self, aggregate: Payment) -> Hashable:
        return aggregate.status

    async def _write(self, aggregate: Payment, *, expected: Hashable) -> bool:
        row = payment_row(aggregate)
        for column in _IMMUTABLE:
            del row[column]
        return (
            await self.conn.execute(_UPDATE, expected_status=cast(Status, expected).value, **row)
            == 1
        )

    async def _conflict(self, aggregate: Payment) -> Exception:
        return PaymentMoved(aggregate.id)

    async def failed_since(self, since: datetime) -> int:
        """How many payment attempts failed or were declined since ``since``."""
        return int(await self.conn.fetchval(_FAILED_SINCE, since=since) or 0)
