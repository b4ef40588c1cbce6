"""What other modules need of payments, as narrow protocols (what their fakes implement)."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from mercato.kernel.money import Money
from mercato.payments.domain import ChargeResult, Payment
from mercato.platform.uow import UnitOfWork


class PaymentsForOrders(Protocol):
    """Payments as the orders module uses them: the two-phase checkout and its recovery."""

    async def open(
        self,
        uow: UnitOfWork,
        *,
        payment_id: str,
        order_id: str,
        amount: Money,
        card_number: str | None = None,
    ) -> Payment: ...

    async def charge(
        self,
        payment: Payment,
        *,
        card_number: str | None = None,
        payment_method: str | None = None,
    ) -> ChargeResult | None: ...

    async def settle(
        self,
        uow: UnitOfWork,
        payment_id: str,
        result: ChargeResult,
        *,
        known: Payment | None = None,
    ) -> Payment: ...

    async def refund_late_capture(self, payment: Payment, result: ChargeResult) -> None: ...

    async def lookup(self, payment: Payment) -> ChargeResult | None: ...

    async def list_for_order(self, order_id: str) -> list[Payment]: ...

    async def stale_pending(self, *, older_than: timedelta, limit: int) -> list[Payment]: ...
