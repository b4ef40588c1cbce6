"""Order use cases, one module per concern: ``drafts``, ``fulfilment``, ``checkout`` (with the
reconciler and the sweeper) and ``queries``. :class:`OrdersService` is their facade: it checks
what it can before a transaction, then runs each command in one unit of work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from mercato.catalog import StockForOrders
from mercato.customers import CustomersForOrders
from mercato.kernel.money import Currency
from mercato.kernel.values import Address, Quantity
from mercato.orders.domain import Order, PricingService, ShippingCalculator, Status
from mercato.orders.service import checkout, drafts, fulfilment, queries
from mercato.orders.service.checkout import Checkout, CheckoutReconciler, ReservationSweeper
from mercato.orders.service.common import Deps, Target, orders
from mercato.orders.store import OrderHead
from mercato.payments import (
    ChargeResult,
    Payment,
    PaymentMeans,
    PaymentsForOrders,
    check_payment,
)
from mercato.platform.pagination import Page
from mercato.platform.security import Principal
from mercato.platform.uow import Transactor, UnitOfWork

__all__ = [
    "Checkout",
    "CheckoutReconciler",
    "NewLine",
    "OrderHead",
    "OrdersService",
    "ReservationSweeper",
]


Command = Callable[[UnitOfWork, Deps, Target], Awaitable[Order]]


@dataclass(frozen=True, slots=True)
class NewLine:
    product_id: str
    quantity: int


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
        self._deps = Deps(
            catalog=catalog,
            customers=customers,
            payments=payments,
            pricing=pricing,
            shipping=shipping,
            currency=currency,
            reservation_ttl=timedelta(seconds=reservation_ttl_s),
        )

    async def _command(self, command: Command, target: Target) -> Order:
        """Run one order command in a unit of work."""
        return await self._transact(lambda uow: command(uow, self._deps, target))

    # -- reading ----------------------------------------------------------------------------

    async def get(self, principal: Principal, order_id: str) -> Order:
        """An order its owner or staff may see; OrderNotFound for anyone else."""
        return await self._transact.read(lambda uow: queries.get(uow, principal, order_id))

    async def head(self, principal: Principal, order_id: str) -> OrderHead:
        """Status and version of an order the caller may see (one cheap read, no lines)."""
        return await self._transact.read(lambda uow: queries.head(uow, principal, order_id))

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
        return await self._transact.read(
            lambda uow: queries.page(
                uow, principal, status=status, customer_id=customer_id, before=before, limit=limit
            )
        )

    async def payments(self, principal: Principal, order_id: str) -> list[Payment]:
        """The payment attempts of an order the caller may see."""
        await self.get(principal, order_id)
        return await self._deps.payments.list_for_order(order_id)

    async def get_unchecked(self, order_id: str) -> Order | None:
        """An order by id, for workers acting on behalf of the system."""
        return await self._transact.read(lambda uow: orders(uow).get(order_id))

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
        order_currency = Currency.validate(currency or self._deps.currency)
        discount = None
        if discount_code:
            discount = (discount_code, self._deps.pricing.discount_percent(discount_code))
        quantities = [(ln.product_id, Quantity(ln.quantity)) for ln in lines or []]
        addresses = None if shipping_address is None else (shipping_address, billing_address)
        return await self._transact(
            lambda uow: drafts.create(
                uow,
                self._deps,
                principal,
                currency=order_currency,
                lines=quantities,
                addresses=addresses,
                discount=discount,
            )
        )

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
        add = partial(drafts.add_line, product_id=product_id, quantity=Quantity(quantity))
        return await self._command(add, Target(principal, order_id, expected_version))

    async def set_line_quantity(
        self,
        principal: Principal,
        order_id: str,
        *,
        quantity: int,
        product_id: str,
        expected_version: int | None = None,
    ) -> Order:
        """Replace a line's quantity."""
        qty = Quantity(quantity)
        change = partial(drafts.set_line_quantity, product_id=product_id, quantity=qty)
        return await self._command(change, Target(principal, order_id, expected_version))

    async def remove_line(
        self,
        principal: Principal,
        order_id: str,
        *,
        product_id: str,
        expected_version: int | None = None,
    ) -> Order:
        """Take a product off the order."""
        remove = partial(drafts.remove_line, product_id=product_id)
        return await self._command(remove, Target(principal, order_id, expected_version))

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
        address = partial(drafts.set_addresses, shipping=shipping, billing=billing)
        return await self._command(address, Target(principal, order_id, expected_version))

    async def apply_discount(
        self,
        principal: Principal,
        order_id: str,
        *,
        code: str | None,
        expected_version: int | None = None,
    ) -> Order:
        """Use a discount code on the order (None removes it)."""
        percent = self._deps.pricing.discount_percent(code) if code else 0
        discount = partial(drafts.apply_discount, code=code, percent=percent)
        return await self._command(discount, Target(principal, order_id, expected_version))

    # -- the state machine ----------------------------------------------------------------

    async def confirm(
        self, principal: Principal, order_id: str, *, expected_version: int | None = None
    ) -> Order:
        """Staff accept a placed order."""
        return await self._command(
            fulfilment.confirm, Target(principal, order_id, expected_version)
        )

    async def ship(
        self,
        principal: Principal,
        order_id: str,
        *,
        tracking_code: str = "",
        expected_version: int | None = None,
    ) -> Order:
        """Staff hand a confirmed order to the carrier."""
        ship = partial(fulfilment.ship, tracking_code=tracking_code)
        return await self._command(ship, Target(principal, order_id, expected_version))

    async def deliver(
        self, principal: Principal, order_id: str, *, expected_version: int | None = None
    ) -> Order:
        """Record that a shipped order arrived."""
        return await self._command(
            fulfilment.deliver, Target(principal, order_id, expected_version)
        )

    async def cancel(
        self,
        principal: Principal,
        order_id: str,
        *,
        reason: str = "",
        expected_version: int | None = None,
    ) -> Order:
        """Cancel a draft, placed or confirmed order; paid stock goes back, a refund follows."""
        cancel = partial(fulfilment.cancel, reason=reason)
        return await self._command(cancel, Target(principal, order_id, expected_version))

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
        """Reserve stock, charge the payment method (or test card) and place the order; see
        :mod:`mercato.orders.service.checkout`."""
        means = check_payment(card_number=card_number, payment_method=payment_method)
        begun = await self.begin_checkout(principal, order_id, means, expected_version)
        return await self.pay(begun, means)

    async def begin_checkout(
        self, principal: Principal, order_id: str, means: PaymentMeans, expected_version: int | None
    ) -> Checkout:
        """Phase 1 of placing: the stock reserved, the payment pending, the draft frozen.

        Every statement of it finds its rows by key, so it runs on generic plans (see
        :func:`mercato.platform.db.run_in_transaction`)."""
        target = Target(principal, order_id, expected_version)
        return await self._transact(
            lambda uow: checkout.begin_checkout(uow, self._deps, target, means),
            generic_plans=True,
        )

    async def pay(self, begun: Checkout, means: PaymentMeans) -> Order:
        """Phases 2 and 3 of placing: charge the pending payment of a checkout this process
        began and settle it (``begun`` is used up)."""
        return await checkout.pay(self._transact, self._deps, begun, means)

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
        deps = self._deps
        order, _ = await self._transact(
            lambda uow: checkout.settle(uow, deps, order_id, payment_id, result, known=payment)
        )
        return order

    async def release_orphaned(self, order_id: str) -> None:
        """Release reservations that belong to no checkout (never expected; kept safe)."""
        catalog = self._deps.catalog
        await self._transact(lambda uow: catalog.release_reservation(uow, order_id, expired=True))
