"""What other modules need of payments, as narrow protocols (what their fakes implement)."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from mercato.payments.domain import ChargeResult, Payment, PaymentMeans, PaymentOpening
from mercato.platform.uow import UnitOfWork


class PaymentsForOrders(Protocol):
    """Payments as the orders module uses them: the two-phase checkout and its recovery."""

    async def open(self, uow: UnitOfWork, opening: PaymentOpening) -> Payment: ...

    def prepare(self, opening: PaymentOpening) -> Payment: ...

    async def record(self, uow: UnitOfWork, payment: Payment) -> None: ...

    async def charge(self, payment: Payment, means: PaymentMeans) -> ChargeResult | None: ...

    async def settle(self, uow: UnitOfWork, payment_id: str, result: ChargeResult) -> Payment: ...

    async def settle_opened(
        self, uow: UnitOfWork, opened: Payment, result: ChargeResult
    ) -> Payment: ...

    async def refund_late_capture(self, payment: Payment, result: ChargeResult) -> None: ...

    async def lookup(self, payment: Payment) -> ChargeResult | None: ...

    async def list_for_order(self, order_id: str) -> list[Payment]: ...

    async def stale_pending(self, *, older_than: timedelta, limit: int) -> list[Payment]: ...
