"""In-memory payments, with the one-live-payment-per-order rule the database index enforces,
and a provider whose answers a test scripts."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any

from mercato.payments.domain import (
    AlreadyPaid,
    ChargeRequest,
    ChargeResult,
    Payment,
    PaymentNotFound,
    Status,
)
from mercato.payments.sandbox import SandboxProvider
from mercato.payments.store import PaymentRepository, payment_from_row, payment_row
from tests.fakes import fake_for, tables_of

_LIVE = (Status.PENDING.value, Status.CAPTURED.value, Status.REFUNDED.value)


@fake_for(PaymentRepository)
class FakePaymentRepository(PaymentRepository):
    __slots__ = ("_uow",)  # its rows are its unit of work's tables

    @property
    def _rows(self) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = tables_of(self._uow).setdefault("payments", {})
        return rows

    def _where(self, **equal: object) -> list[Payment]:
        found = [r for _, r in sorted(self._rows.items()) if equal.items() <= r.items()]
        return [self._track(payment_from_row(r)) for r in found]

    async def get(self, payment_id: str) -> Payment:
        if payment_id not in self._rows:
            raise PaymentNotFound(payment_id)
        return self._track(payment_from_row(self._rows[payment_id]))

    async def add(self, payment: Payment) -> None:
        live = [r for r in self._rows.values() if r["status"] in _LIVE]
        if any(r["order_id"] == payment.order_id for r in live):
            raise AlreadyPaid(payment.order_id)
        self._rows[payment.id] = payment_row(payment)
        self._track_new(payment)

    async def for_order(self, order_id: str) -> list[Payment]:
        return self._where(order_id=order_id)

    async def captured_for_order(self, order_id: str) -> Payment | None:
        found = self._where(order_id=order_id, status=Status.CAPTURED.value)
        return found[0] if found else None

    async def pending_before(self, before: datetime, *, limit: int) -> list[Payment]:
        pending = self._where(status=Status.PENDING.value)
        return sorted((p for p in pending if p.created_at < before), key=lambda p: p.created_at)[
            :limit
        ]

    async def _write(self, aggregate: Payment, *, expected: Hashable) -> bool:
        row = self._rows[aggregate.id]
        if row["status"] != expected:
            return False
        row.update(payment_row(aggregate))
        return True


class ScriptedProvider(SandboxProvider):
    """The sandbox, except for the answers a test scripts: ``charges`` and ``refunds`` are
    answered in turn (an exception is raised, as by a provider that failed), then the sandbox
    answers. Every call is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.charges: list[ChargeResult | Exception] = []
        self.refunds: list[ChargeResult | Exception] = []
        self.calls: list[tuple[str, str]] = []

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        self.calls.append(("charge", request.idempotency_key))
        if self.charges:
            return _answer(self.charges.pop(0))
        return await super().charge(request)

    async def refund(self, **request: Any) -> ChargeResult:
        self.calls.append(("refund", request["idempotency_key"]))
        if self.refunds:
            return _answer(self.refunds.pop(0))
        return await super().refund(**request)


def _answer(scripted: ChargeResult | Exception) -> ChargeResult:
    if isinstance(scripted, Exception):
        raise scripted
    return scripted
