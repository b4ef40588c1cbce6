"""Payment use cases: open a payment, charge it, settle it, refund it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from mercato.kernel.clock import utcnow
from mercato.payments.domain import (
    ChargeRequest,
    ChargeResult,
    Outcome,
    Payment,
    PaymentMeans,
    PaymentOpening,
    PaymentProvider,
    Status,
)
from mercato.payments.store import PaymentRepository
from mercato.platform.outbox import OutboxEvent
from mercato.platform.uow import Transactor, UnitOfWork

log = logging.getLogger("mercato.payments")


class PaymentsService:
    """The payments module's use cases."""

    def __init__(self, transact: Transactor, *, provider: PaymentProvider) -> None:
        self._transact = transact
        self.provider = provider

    async def open(self, uow: UnitOfWork, opening: PaymentOpening) -> Payment:
        """Inside the caller's transaction: record a pending payment before charging."""
        payment = self.prepare(opening)
        await self.record(uow, payment)
        return payment

    def prepare(self, opening: PaymentOpening) -> Payment:
        """A pending payment for ``opening``, not yet recorded: the caller records it with
        :meth:`record`, or writes its row together with its own change, in the transaction that
        precedes the charge.

        Paid by a payment method (no card number), the last four digits are not known yet.
        """
        return Payment.open(
            id=opening.payment_id,
            order_id=opening.order_id,
            amount=opening.amount,
            provider=self.provider.name,
            card_last4=opening.means.card_last4,
            now=utcnow(),
        )

    async def record(self, uow: UnitOfWork, payment: Payment) -> None:
        """Inside the caller's transaction: insert a prepared pending payment (AlreadyPaid if
        the order has a live payment already)."""
        await uow.repository(PaymentRepository).add(payment)

    async def charge(self, payment: Payment, means: PaymentMeans) -> ChargeResult | None:
        """Ask the provider to capture; None when the answer is unknown (network failure)."""
        request = ChargeRequest(payment.idempotency_key, payment.amount, means)
        try:
            return await self.provider.charge(request)
        except Exception:
            log.exception("payment provider call failed for payment %s", payment.id)
            return None

    async def settle(self, uow: UnitOfWork, payment_id: str, result: ChargeResult) -> Payment:
        """Inside the caller's transaction: record the provider's answer (once).

        The payment is read under a lock; if another process settled it first, the stored
        payment is returned unchanged.
        """
        payments = uow.repository(PaymentRepository)
        payment = await payments.get(payment_id)
        if payment.status is Status.PENDING:
            payment.settle(result, now=utcnow())
            await payments.save(payment)
        return payment

    async def settle_opened(
        self, uow: UnitOfWork, opened: Payment, result: ChargeResult
    ) -> Payment:
        """:meth:`settle` for the caller that holds the pending payment as it opened it.

        The answer is written by one conditional update instead of a locked read and an
        update; if another process settled it first, the stored payment is returned unchanged.
        """
        if opened.status is Status.PENDING:
            payments = uow.repository(PaymentRepository)
            settled = payments.attach(opened)
            settled.settle(result, now=utcnow())
            if await payments.save_unless_moved(settled):
                return settled
        return await self.settle(uow, opened.id, result)

    async def refund_order(self, order_id: str) -> Payment | None:
        """Refund the order's captured payment, if it has one (idempotent)."""
        payment = await self._transact.read(
            lambda uow: uow.repository(PaymentRepository).captured_for_order(order_id)
        )
        if payment is None:
            return None
        result = await self.provider.refund(
            idempotency_key=payment.refund_key,
            reference=payment.provider_reference,
            amount=payment.amount,
        )
        if result.outcome is not Outcome.CAPTURED:
            raise RuntimeError(f"refund of payment {payment.id} failed: {result.reason}")

        async def work(uow: UnitOfWork) -> Payment:
            payments = uow.repository(PaymentRepository)
            current = await payments.get(payment.id)
            if current.status is Status.CAPTURED:
                current.mark_refunded(now=utcnow())
                await payments.save(current)
            return current

        return await self._transact(work)

    async def refund_late_capture(self, payment: Payment, result: ChargeResult) -> None:
        """Give back a charge the provider captured after its checkout was given up.

        The payment was already recorded as failed (the reconciler or the sweeper found no
        answer in time), so no order holds this money: it is refunded at once. A refund the
        provider refuses is logged for a person to settle by hand.
        """
        try:
            refund = await self.provider.refund(
                idempotency_key=payment.refund_key,
                reference=result.reference or "",
                amount=payment.amount,
            )
        except Exception:
            log.exception("late capture of payment %s could not be refunded", payment.id)
            return
        if refund.outcome is Outcome.CAPTURED:
            log.warning("payment %s was captured after its checkout ended; refunded", payment.id)
        else:
            log.error(
                "late capture of payment %s could not be refunded: %s", payment.id, refund.reason
            )

    async def on_order_cancelled(self, event: OutboxEvent) -> None:
        """Outbox subscriber: refund a cancelled order that had been paid."""
        if event.payload.get("refund_due"):
            await self.refund_order(event.aggregate_id)

    async def lookup(self, payment: Payment) -> ChargeResult | None:
        """Ask the provider what became of a payment's charge (None: it never saw one)."""
        return await self.provider.lookup(idempotency_key=payment.idempotency_key)

    async def stale_pending(self, *, older_than: timedelta, limit: int) -> list[Payment]:
        """Payments still pending after ``older_than`` (their request probably died)."""
        before = utcnow() - older_than
        return await self._transact.read(
            lambda uow: uow.repository(PaymentRepository).pending_before(before, limit=limit)
        )

    async def list_for_order(self, order_id: str) -> list[Payment]:
        """Every payment attempt of an order, oldest first (own connection)."""
        return await self._transact.read(
            lambda uow: uow.repository(PaymentRepository).for_order(order_id)
        )

    async def failed_since(self, since: datetime) -> int:
        """How many payment attempts failed or were declined since ``since`` (the console)."""
        return await self._transact.read(
            lambda uow: uow.repository(PaymentRepository).failed_since(since)
        )
