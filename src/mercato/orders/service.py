"""Order use cases. Orders coordinate customers, catalog and payments through their facades.

Placing an order runs in two short transactions around the payment provider call, so no row
lock is ever held across a network call and a crash at any point is recoverable:

1. *begin*: lock the order, check the customer is active, reserve stock for every line (all or
   nothing, at current prices), price the order, record a pending payment, freeze the draft.
2. call the provider with the payment's idempotency key (outside any transaction).
3. *settle*: record the answer; captured -> reservation becomes sold, order placed; declined or
   failed -> reservation released, order back to an editable draft the customer can retry.

If the process dies between 1 and 3, the checkout reconciler (a background worker) asks the
provider what happened to the pending payment and runs step 3 for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from mercato.catalog import ReservedLine, StockForOrders
from mercato.customers import CustomersForOrders
from mercato.kernel.clock import utcnow
from mercato.kernel.errors import PermissionDenied
from mercato.kernel.ids import new_id
from mercato.kernel.money import Currency
from mercato.kernel.values import Address, Quantity
from mercato.orders import store
from mercato.orders.domain import (
    CheckoutAbandoned,
    Order,
    OrderConflict,
    OrderNotFound,
    PricingService,
    ProductInfo,
    ShippingCalculator,
    Status,
)
from mercato.payments import (
    ChargeResult,
    Outcome,
    Payment,
    PaymentDeclined,
    PaymentsForOrders,
    ProviderError,
    check_payment,
)
from mercato.payments import Status as PaymentStatus
from mercato.platform.db import Connection
from mercato.platform.pagination import Page, page_of
from mercato.platform.security import Principal
from mercato.platform.uow import Transactor, UnitOfWork

log = logging.getLogger("mercato.orders")

RESERVATION_EXPIRED = "reservation_expired"


class Actor(Enum):
    OWNER = "owner"
    STAFF = "staff"
    OWNER_OR_STAFF = "owner_or_staff"


@dataclass(frozen=True, slots=True)
class NewLine:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class OrderHead:
    """What following an order needs: who may see it, where it stands, its version."""

    id: str
    customer_id: str
    status: Status
    version: int


@dataclass(frozen=True, slots=True)
class Checkout:
    order: Order
    payment: Payment


def _info(line: ReservedLine) -> ProductInfo:
    return ProductInfo(line.product_id, line.sku, line.name, line.price, line.weight_grams)


class OrdersService:
    """The orders module's use cases."""

    def __init__(
        self,
        transact: Transactor,
        *,
        catalog: StockForOrders,
        customers: CustomersForOrders,
        payments: PaymentsForOrders,
        pricing: PricingService,
        shipping: ShippingCalculator,
        currency: str,
        reservation_ttl_s: int,
    ) -> None:
        self._transact = transact
        self._catalog = catalog
        self._customers = customers
        self._payments = payments
        self._pricing = pricing
        self._shipping = shipping
        self._currency = currency
        self._reservation_ttl = timedelta(seconds=reservation_ttl_s)

    # -- reading ----------------------------------------------------------------------------

    async def get(self, principal: Principal, order_id: str) -> Order:
        """An order its owner or staff may see; OrderNotFound for anyone else."""
        order = await self._transact.read(lambda uow: store.get(uow.conn, order_id))
        return self._visible(principal, order, order_id)

    async def head(self, principal: Principal, order_id: str) -> OrderHead:
        """Status and version of an order the caller may see (one cheap read, no lines)."""
        row = await self._transact.read(lambda uow: store.head(uow.conn, order_id))
        if row is None or not (principal.is_staff or row["customer_id"] == principal.user_id):
            raise OrderNotFound(order_id)
        return OrderHead(order_id, row["customer_id"], Status(row["status"]), int(row["version"]))

    async def list_orders(
        self,
        principal: Principal,
        *,
        status: Status | None,
        customer_id: str | None,
        before: str | None,
        limit: int,
    ) -> Page[Order]:
        """Newest first: the caller's orders, or (staff) anyone's, optionally filtered."""
        if not principal.is_staff:
            customer_id = principal.user_id
        rows = await self._transact.read(
            lambda uow: store.page(
                uow.conn,
                customer_id=customer_id,
                status=status.value if status else None,
                before=before,
                limit=limit + 1,
            )
        )
        return page_of(rows, limit)

    async def payments(self, principal: Principal, order_id: str) -> list[Payment]:
        """The payment attempts of an order the caller may see."""
        await self.get(principal, order_id)
        return await self._payments.list_for_order(order_id)

    async def get_unchecked(self, order_id: str) -> Order | None:
        """An order by id, for workers acting on behalf of the system."""
        return await self._transact.read(lambda uow: store.get(uow.conn, order_id))

    async def release_orphaned(self, order_id: str) -> None:
        """Release reservations that belong to no checkout (never expected; kept safe)."""

        async def work(uow: UnitOfWork) -> None:
            await self._catalog.release_reservation(uow, order_id, expired=True)

        await self._transact(work)

    @staticmethod
    def _visible(principal: Principal, order: Order | None, order_id: str) -> Order:
        if order is None or not (principal.is_staff or order.customer_id == principal.user_id):
            raise OrderNotFound(order_id)
        return order

    # -- drafts -----------------------------------------------------------------------------

    async def create(
        self,
        principal: Principal,
        *,
        currency: str | None = None,
        lines: list[NewLine] | None = None,
        shipping_address: Address | None = None,
        billing_address: Address | None = None,
        discount_code: str | None = None,
    ) -> Order:
        """Start a draft order for the caller, optionally with lines, addresses and a discount."""
        order_currency = Currency.validate(currency or self._currency)
        percent = self._pricing.discount_percent(discount_code) if discount_code else 0
        quantities = [(ln.product_id, Quantity(ln.quantity)) for ln in lines or []]

        async def work(uow: UnitOfWork) -> Order:
            now = utcnow()
            order = Order.create(
                id=new_id(), customer_id=principal.user_id, currency=order_currency, now=now
            )
            for product_id, qty in quantities:
                described = await self._catalog.describe_for_order(uow, product_id)
                order.add_line(_info(described), qty, now=now)
            if shipping_address is not None:
                order.set_addresses(shipping_address, billing_address, now=now)
            if discount_code:
                order.apply_discount(discount_code, percent, now=now)
            order.version = 1
            order.reprice(self._pricing, self._shipping)
            await store.add(uow.conn, order)
            uow.collect(order)
            return order

        return await self._transact(work)

    async def add_line(
        self,
        principal: Principal,
        order_id: str,
        *,
        product_id: str,
        quantity: int,
        expected_version: int | None = None,
    ) -> Order:
        """Add units of a product (raising the quantity if it is already on the order)."""
        qty = Quantity(quantity)

        async def change(uow: UnitOfWork, order: Order) -> None:
            described = await self._catalog.describe_for_order(uow, product_id)
            order.add_line(_info(described), qty, now=utcnow())

        return await self._change(principal, order_id, expected_version, change, Actor.OWNER)

    async def set_line_quantity(
        self,
        principal: Principal,
        order_id: str,
        *,
        product_id: str,
        quantity: int,
        expected_version: int | None = None,
    ) -> Order:
        """Replace a line's quantity."""
        qty = Quantity(quantity)

        async def change(uow: UnitOfWork, order: Order) -> None:
            order.set_quantity(product_id, qty, now=utcnow())

        return await self._change(principal, order_id, expected_version, change, Actor.OWNER)

    async def remove_line(
        self,
        principal: Principal,
        order_id: str,
        *,
        product_id: str,
        expected_version: int | None = None,
    ) -> Order:
        """Take a product off the order."""

        async def change(uow: UnitOfWork, order: Order) -> None:
            order.remove_line(product_id, now=utcnow())

        return await self._change(principal, order_id, expected_version, change, Actor.OWNER)

    async def set_addresses(
        self,
        principal: Principal,
        order_id: str,
        *,
        shipping: Address,
        billing: Address | None,
        expected_version: int | None = None,
    ) -> Order:
        """Set where the order ships and whom it bills."""

        async def change(uow: UnitOfWork, order: Order) -> None:
            order.set_addresses(shipping, billing, now=utcnow())

        return await self._change(principal, order_id, expected_version, change, Actor.OWNER)

    async def apply_discount(
        self,
        principal: Principal,
        order_id: str,
        *,
        code: str | None,
        expected_version: int | None = None,
    ) -> Order:
        """Use a discount code on the order (None removes it)."""
        percent = self._pricing.discount_percent(code) if code else 0

        async def change(uow: UnitOfWork, order: Order) -> None:
            order.apply_discount(code, percent, now=utcnow())

        return await self._change(principal, order_id, expected_version, change, Actor.OWNER)

    # -- the state machine ----------------------------------------------------------------

    async def confirm(
        self, principal: Principal, order_id: str, *, expected_version: int | None = None
    ) -> Order:
        """Staff accept a placed order."""

        async def change(uow: UnitOfWork, order: Order) -> None:
            order.confirm(now=utcnow())

        return await self._change(principal, order_id, expected_version, change, Actor.STAFF)

    async def ship(
        self,
        principal: Principal,
        order_id: str,
        *,
        tracking_code: str = "",
        expected_version: int | None = None,
    ) -> Order:
        """Staff hand a confirmed order to the carrier."""

        async def change(uow: UnitOfWork, order: Order) -> None:
            order.ship(tracking_code=tracking_code, now=utcnow())

        return await self._change(principal, order_id, expected_version, change, Actor.STAFF)

    async def deliver(
        self, principal: Principal, order_id: str, *, expected_version: int | None = None
    ) -> Order:
        """Record that a shipped order arrived."""

        async def change(uow: UnitOfWork, order: Order) -> None:
            order.deliver(now=utcnow())

        return await self._change(principal, order_id, expected_version, change, Actor.STAFF)

    async def cancel(
        self,
        principal: Principal,
        order_id: str,
        *,
        reason: str = "",
        expected_version: int | None = None,
    ) -> Order:
        """Cancel a draft, placed or confirmed order; paid stock goes back, a refund follows."""

        async def change(uow: UnitOfWork, order: Order) -> None:
            previous = order.cancel(reason=reason, cancelled_by=principal.role.value, now=utcnow())
            if previous is not Status.DRAFT:
                await self._catalog.return_stock(uow, order.id)

        return await self._change(
            principal, order_id, expected_version, change, Actor.OWNER_OR_STAFF
        )

    # -- placing ----------------------------------------------------------------------------

    async def place(
        self,
        principal: Principal,
        order_id: str,
        *,
        card_number: str | None = None,
        payment_method: str | None = None,
        expected_version: int | None = None,
    ) -> Order:
        """Reserve stock, charge the payment method (or test card) and place the order; see the
        module docstring."""
        card, method = check_payment(card_number=card_number, payment_method=payment_method)
        checkout = await self._begin_checkout(principal, order_id, card, expected_version)
        result = await self._payments.charge(
            checkout.payment, card_number=card, payment_method=method
        )
        if result is None:
            raise ProviderError("no_answer")
        order, payment = await self._settle(
            order_id, checkout.payment.id, result, known=checkout.payment
        )
        if result.outcome is Outcome.CAPTURED and payment.status is not PaymentStatus.CAPTURED:
            # captured after the reconciler or sweeper had given this checkout up as stuck
            await self._payments.refund_late_capture(payment, result)
            raise CheckoutAbandoned()
        if result.outcome is Outcome.DECLINED:
            raise PaymentDeclined(result.reason or "declined")
        if result.outcome is Outcome.ERROR:
            raise ProviderError(result.reason or "error")
        return order

    async def _begin_checkout(
        self, principal: Principal, order_id: str, card: str | None, expected_version: int | None
    ) -> Checkout:
        async def work(uow: UnitOfWork) -> Checkout:
            order = await self._locked(uow.conn, principal, order_id, expected_version, Actor.OWNER)
            await self._customers.ensure_can_order(uow, order.customer_id)
            order.ensure_placeable()
            now = utcnow()
            reserved = await self._catalog.reserve(
                uow, order.id, order.quantities(), expires_at=now + self._reservation_ttl
            )
            payment_id = new_id()
            seen = order.version
            order.begin_checkout(
                payment_id,
                [_info(r) for r in reserved],
                pricing=self._pricing,
                shipping=self._shipping,
                now=now,
            )
            assert order.totals is not None
            payment = await self._payments.open(
                uow,
                payment_id=payment_id,
                order_id=order.id,
                amount=order.totals.total,
                card_number=card,
            )
            await self._save(uow, order, seen)
            return Checkout(order, payment)

        return await self._transact(work)

    async def settle_checkout(
        self,
        order_id: str,
        payment_id: str,
        result: ChargeResult,
        *,
        payment: Payment | None = None,
    ) -> Order:
        """Record a provider's answer for a checkout and place or reopen the order (once).

        ``payment`` is the pending payment as begin-checkout opened it, when the caller has it.
        """
        order, _ = await self._settle(order_id, payment_id, result, known=payment)
        return order

    async def _settle(
        self, order_id: str, payment_id: str, result: ChargeResult, *, known: Payment | None
    ) -> tuple[Order, Payment]:
        async def work(uow: UnitOfWork) -> tuple[Order, Payment]:
            order = await store.get(uow.conn, order_id, for_update=True)
            if order is None:
                raise OrderNotFound(order_id)
            payment = await self._payments.settle(uow, payment_id, result, known=known)
            if order.checkout_payment_id != payment_id:
                return order, payment  # settled already (by the request or by the reconciler)
            seen = order.version
            if payment.status.value == "captured":
                await self._catalog.commit_reservation(uow, order.id)
                order.complete_checkout(now=utcnow())
            else:
                await self._catalog.release_reservation(
                    uow, order.id, expired=result.reason == RESERVATION_EXPIRED
                )
                order.abort_checkout(now=utcnow())
            await self._save(uow, order, seen)
            return order, payment

        return await self._transact(work)

    # -- helpers ----------------------------------------------------------------------------

    async def _change(
        self,
        principal: Principal,
        order_id: str,
        expected_version: int | None,
        change: Callable[[UnitOfWork, Order], Awaitable[None]],
        actor: Actor,
    ) -> Order:
        async def work(uow: UnitOfWork) -> Order:
            order = await self._locked(uow.conn, principal, order_id, expected_version, actor)
            seen = order.version
            await change(uow, order)
            order.reprice(self._pricing, self._shipping)
            await self._save(uow, order, seen)
            return order

        return await self._transact(work)

    async def _locked(
        self,
        conn: Connection,
        principal: Principal,
        order_id: str,
        expected_version: int | None,
        actor: Actor,
    ) -> Order:
        order = self._visible(principal, await store.get(conn, order_id, for_update=True), order_id)
        if actor is Actor.STAFF and not principal.is_staff:
            raise PermissionDenied("staff_only", "only staff may do this")
        if actor is Actor.OWNER:
            order.ensure_owner(principal.user_id)
        if expected_version is not None and expected_version != order.version:
            raise OrderConflict(order_id, current_version=order.version)
        return order

    async def _save(self, uow: UnitOfWork, order: Order, seen: int) -> None:
        if order.version == seen:
            return
        if not await store.save(uow.conn, order, expected_version=seen):
            current = await store.version_of(uow.conn, order.id)
            raise OrderConflict(order.id, current_version=current or seen)
        uow.collect(order)


class CheckoutReconciler:
    """Worker: settles checkouts whose request died between charging and recording the answer.

    A payment still pending ``grace_s`` after it was opened is looked up at the provider by its
    idempotency key; the answer (or, if the provider never saw the charge, a failure) is then
    recorded exactly as the request would have done.
    """

    name = "checkout-reconciler"

    def __init__(
        self, orders: OrdersService, payments: PaymentsForOrders, *, grace_s: float, batch: int = 50
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
    product. If the provider cannot be reached the order is left for the next round.
    """

    name = "reservation-sweeper"

    def __init__(
        self,
        orders: OrdersService,
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
        payment = next(
            p for p in await self._payments.list_for_order(order_id) if p.id == payment_id
        )
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
