"""Placing an order: the two-phase checkout around the payment provider, and its recovery.

Placing runs in two short transactions around the provider call, so no row lock is ever held
across a network call and a crash at any point is recoverable:

1. *begin*: lock the order, check the customer is active, reserve stock for every line (all or
   nothing, at current prices), price the order, record a pending payment, freeze the draft.
2. call the provider with the payment's idempotency key (outside any transaction).
3. *settle*: record the answer; captured -> reservation becomes sold, order placed; declined or
   failed -> reservation released, order back to an editable draft the customer can retry.

If the process dies between 1 and 3, the :class:`CheckoutReconciler` (a background worker) asks
the provider what happened to the pending payment and runs step 3 for it; the
:class:`ReservationSweeper` is the last line for reservations that expired unsettled.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from mercato.catalog import StockForOrders
from mercato.customers import CustomerInactive
from mercato.kernel.clock import utcnow
from mercato.kernel.events import DomainEvent
from mercato.kernel.ids import new_id
from mercato.orders.domain import CheckoutAbandoned, Order, OrderNotFound
from mercato.orders.service.common import (
    Actor,
    Deps,
    Target,
    allowed,
    locked,
    orders,
    product_info,
)
from mercato.orders.store.checkout import settle_at_once
from mercato.payments import (
    AlreadyPaid,
    ChargeResult,
    Outcome,
    Payment,
    PaymentMeans,
    PaymentOpening,
    PaymentsForOrders,
    ProviderError,
)
from mercato.payments import Status as PaymentStatus
from mercato.platform.db import Connection, UniqueViolation
from mercato.platform.uow import Transactor, UnitOfWork

log = logging.getLogger("mercato.orders")

RESERVATION_EXPIRED = "reservation_expired"


class OrdersForWorkers(Protocol):
    """What the recovery workers need of the orders facade."""

    async def settle_checkout(self, order_id: str, payment_id: str, result: ChargeResult) -> Order:
        """Record a provider's answer for a checkout, as a live request would."""

    async def get_unchecked(self, order_id: str) -> Order | None:
        """An order by id, for workers acting on behalf of the system."""

    async def release_orphaned(self, order_id: str) -> None:
        """Release reservations that belong to no checkout."""


@dataclass(frozen=True, slots=True)
class Checkout:
    """A draft frozen for payment and its pending payment (what phase 1 leaves behind)."""

    order: Order
    payment: Payment


async def begin_checkout(
    uow: UnitOfWork, deps: Deps, target: Target, means: PaymentMeans
) -> Checkout:
    """Phase 1: reserve the stock, price the order and open a pending payment for it."""
    order = await _payable(uow, deps, target)
    order.ensure_placeable()  # before any stock is taken: a placed order's retry is refused as such
    now = utcnow()
    reserved = await deps.catalog.reserve(
        uow, order.id, order.quantities(), expires_at=now + deps.reservation_ttl
    )
    payment_id = new_id()
    current = [product_info(r) for r in reserved]
    order.begin_checkout(payment_id, current, pricing=deps.pricing, shipping=deps.shipping, now=now)
    payment = deps.payments.prepare(PaymentOpening(payment_id, order.id, order.totals.total, means))
    await _record(uow, deps, order, payment)
    return Checkout(order, payment)


async def _record(uow: UnitOfWork, deps: Deps, order: Order, payment: Payment) -> None:
    """Write the frozen draft and its pending payment: in one statement where the store can."""
    try:
        if await orders(uow).save_with_payment(order, payment):
            return
    except UniqueViolation as exc:  # the payments module's own insert says the same
        if exc.mentions("live_order"):
            raise AlreadyPaid(order.id) from None
        raise
    await deps.payments.record(uow, payment)
    await orders(uow).save(order)


async def _payable(uow: UnitOfWork, deps: Deps, target: Target) -> Order:
    """The target order, locked, once its owner is known to be allowed to order; where the
    store can, the order and its customer's state come in one statement."""
    found = await orders(uow).lock_with_customer(target.order_id)
    if found is None:
        order = await locked(uow, target, Actor.OWNER)
        await deps.customers.ensure_can_order(uow, order.customer_id)
        return order
    order, active = allowed(target, found[0], Actor.OWNER), found[1]
    if not active:
        raise CustomerInactive(order.customer_id)
    return order


async def settle(
    uow: UnitOfWork,
    deps: Deps,
    order_id: str,
    payment_id: str,
    result: ChargeResult,
    *,
    known: Payment | None,
) -> tuple[Order, Payment]:
    """Phase 3: record the provider's answer and place or reopen the order (once)."""
    order = await orders(uow).get(order_id, lock=True)
    if order is None:
        raise OrderNotFound(order_id)
    if known is None:
        payment = await deps.payments.settle(uow, payment_id, result)
    else:
        payment = await deps.payments.settle_opened(uow, known, result)
    if order.checkout_payment_id != payment_id:
        return order, payment  # settled already (by the request or by the reconciler)
    if payment.status is PaymentStatus.CAPTURED:
        await deps.catalog.commit_reservation(uow, order.id)
        order.complete_checkout(now=utcnow())
    else:
        expired = result.reason == RESERVATION_EXPIRED
        await deps.catalog.release_reservation(uow, order.id, expired=expired)
        order.abort_checkout(now=utcnow())
    await orders(uow).save(order)
    return order, payment


async def pay(transact: Transactor, deps: Deps, begun: Checkout, means: PaymentMeans) -> Order:
    """Phases 2 and 3: charge, settle, and raise what the customer must hear of a failure."""
    pending = begun.payment
    result = await deps.payments.charge(pending, means)
    if result is None:
        raise ProviderError("no_answer")
    settled = await _settle_at_once(transact, begun, result) if transact.one_statement else None
    if settled is None:
        settled = await transact(
            lambda uow: settle(uow, deps, pending.order_id, pending.id, result, known=pending)
        )
    order, payment = settled
    if result.outcome is Outcome.CAPTURED and payment.status is not PaymentStatus.CAPTURED:
        # captured after the reconciler or sweeper had given this checkout up as stuck
        await deps.payments.refund_late_capture(payment, result)
        raise CheckoutAbandoned()
    if result.outcome is not Outcome.CAPTURED:
        raise result.refusal()
    return order


async def _settle_at_once(
    transact: Transactor, begun: Checkout, result: ChargeResult
) -> tuple[Order, Payment] | None:
    """Phase 3 in one statement (PostgreSQL), from what phase 1 left: ``begun.order`` is settled
    in memory and written only if its row is still at the version phase 1 saved; None when it is
    not (settled or changed meanwhile: the caller settles the general way, from the rows).
    ``begun`` is used up either way."""
    order, expected = begun.order, begun.order.version
    payment = dataclasses.replace(begun.payment)
    now = utcnow()
    payment.settle(result, now=now)
    captured = payment.status is PaymentStatus.CAPTURED
    if captured:
        order.complete_checkout(now=now)
    else:
        order.abort_checkout(now=now)
    events = [*order.pull_events(), *payment.pull_events()]  # as a unit of work orders them
    answer = {
        "id": payment.id,
        "status": payment.status.value,
        "card_last4": payment.card_last4,
        "provider_reference": payment.provider_reference,
        "failure_reason": payment.failure_reason,
    }

    async def write(conn: Connection) -> tuple[bool, list[DomainEvent]]:
        done = await settle_at_once(
            conn,
            order,
            expected_version=expected,
            payment=answer,
            captured=captured,
            events=events,
            now=now,
        )
        return done, events if done else []

    return (order, payment) if await transact.at_once(write) else None


class CheckoutReconciler:
    """Worker: settles checkouts whose request died between charging and recording the answer.

    A payment still pending ``grace_s`` after it was opened is looked up at the provider by its
    idempotency key; the answer (or, if the provider never saw the charge, a failure) is then
    recorded exactly as the request would have done.
    """

    name = "checkout-reconciler"

    def __init__(
        self,
        orders: OrdersForWorkers,
        payments: PaymentsForOrders,
        *,
        grace_s: float,
        batch: int = 50,
    ) -> None:
        self._orders = orders
        self._payments = payments
        self._grace = timedelta(seconds=grace_s)
        self._batch = batch

    async def run_once(self) -> int:
        """Settle one batch of stale pending payments; returns how many."""
        stale = await self._payments.stale_pending(older_than=self._grace, limit=self._batch)
        settled = 0
        for payment in stale:
            try:
                result = await self._payments.lookup(payment)
            except Exception:
                # one payment the provider cannot answer for yet must not hold up the others
                log.warning("provider lookup failed; payment %s left for later", payment.id)
                continue
            if result is None:
                result = ChargeResult(Outcome.ERROR, reason="abandoned")
            await self.settle(payment, result)
            settled += 1
        return settled

    async def settle(self, payment: Payment, result: ChargeResult) -> None:
        """Record one answer through the same path a live request uses."""
        await self._orders.settle_checkout(payment.order_id, payment.id, result)


class ReservationSweeper:
    """Worker: returns the stock of checkouts whose reservation expired before they were settled.

    Normally a checkout is settled within a second, and a stuck one by the reconciler after its
    grace period; this is the last line. For each order holding expired reservations it asks the
    provider about the order's pending payment: a capture still places the order (the stock was
    never released, so it is sold, not oversold); anything else fails the payment with
    ``reservation_expired`` and releases the stock, recording a ``ReservationExpired`` event per
    product. Reservations of an order with no checkout (never expected) are simply released. If
    the provider cannot be reached the order is left for the next round.
    """

    name = "reservation-sweeper"

    def __init__(
        self,
        orders: OrdersForWorkers,
        catalog: StockForOrders,
        payments: PaymentsForOrders,
        *,
        batch: int = 50,
    ) -> None:
        self._orders = orders
        self._catalog = catalog
        self._payments = payments
        self._batch = batch

    async def run_once(self) -> int:
        """Sweep one batch of orders with expired reservations; returns how many were settled."""
        swept = 0
        for order_id in await self._catalog.expired_reservations(limit=self._batch):
            swept += await self._sweep(order_id)
        return swept

    async def _sweep(self, order_id: str) -> int:
        order = await self._orders.get_unchecked(order_id)
        if order is None or order.checkout_payment_id is None:
            await self._orders.release_orphaned(order_id)
            return 1
        payment_id = order.checkout_payment_id
        attempts = await self._payments.list_for_order(order_id)
        payment = next((p for p in attempts if p.id == payment_id), None)
        if payment is None:  # never expected: begin-checkout writes both in one transaction
            log.error(
                "order %s is in checkout with a payment %s that does not exist",
                order_id,
                payment_id,
            )
            return 0
        try:
            result = await self._payments.lookup(payment)
        except Exception:
            log.warning(
                "provider unreachable; expired checkout of order %s left for later", order_id
            )
            return 0
        if result is None or result.outcome is not Outcome.CAPTURED:
            result = ChargeResult(Outcome.ERROR, reason=RESERVATION_EXPIRED)
        await self._orders.settle_checkout(order_id, payment_id, result)
        return 1
