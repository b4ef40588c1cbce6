"""Order use cases, one module per concern: ``drafts``, ``fulfilment``, ``checkout`` (with the
reconciler and the sweeper) and ``queries``. :class:`OrdersService` is their facade: it checks
what it can before a transaction, then runs each command in one unit of work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mercato.catalog import StockForOrders
from mercato.customers import CustomersForOrders
from mercato.kernel.money import Currency
from mercato.kernel.values import Address, Quantity
from mercato.orders.domain import Order, PricingService, ShippingCalculator, Status
from mercato.orders.service import checkout, drafts, fulfilment, queries
from mercato.orders.service.checkout import Checkout, CheckoutReconciler, ReservationSweeper
from mercato.orders.service.common import Deps, Target, orders
from mercato.orders.store import OrderHead
from mercato.payments import ChargeResult, Payment, PaymentsForOrders, check_payment
from mercato.platform.pagination import Page
from mercato.platform.security import Principal
from mercato.platform.uow import Transactor

__all__ = [
    "Checkout",
    "CheckoutReconciler",
    "NewLine",
    "OrderHead",
    "OrdersService",
    "ReservationSweeper",
]


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
        target, qty = Target(principal, order_id, expected_version), Quantity(quantity)
        return await self._transact(
            lambda uow: drafts.add_line(
                uow, self._deps, target, product_id=product_id, quantity=qty
            )
        )

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
        target, qty = Target(principal, order_id, expected_version), Quantity(quantity)
        return await self._transact(
            lambda uow: drafts.set_line_quantity(
                uow, self._deps, target, product_id=product_id, quantity=qty
            )
        )

    async def remove_line(
        self,
        principal: Principal,
        order_id: str,
        *,
        product_id: str,
        expected_version: int | None = None,
    ) -> Order:
        """Take a product off the order."""
        target = Target(principal, order_id, expected_version)
        return await self._transact(
            lambda uow: drafts.remove_line(uow, self._deps, target, product_id=product_id)
        )

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
        target = Target(principal, order_id, expected_version)
        return await self._transact(
            lambda uow: drafts.set_addresses(
                uow, self._deps, target, shipping=shipping, billing=billing
            )
        )

    async def apply_discount(
        self,
        principal: Principal,
        order_id: str,
        *,
        code: str | None,
        expected_version: int | None = None,
    ) -> Order:
        """Use a discount code on the order (None removes it)."""
        target = Target(principal, order_id, expected_version)
        percent = self._deps.pricing.discount_percent(code) if code else 0
        return await self._transact(
            lambda uow: drafts.apply_discount(uow, self._deps, target, code=code, percent=percent)
        )

    # -- the state machine ----------------------------------------------------------------

    async def confirm(
        self, principal: Principal, order_id: str, *, expected_version: int | None = None
    ) -> Order:
        """Staff accept a placed order."""
        target = Target(principal, order_id, expected_version)
        return await self._transact(lambda uow: fulfilment.confirm(uow, self._deps, target))

    async def ship(
        self,
        principal: Principal,
        order_id: str,
        *,
        tracking_code: str = "",
        expected_version: int | None = None,
    ) -> Order:
        """Staff hand a confirmed order to the carrier."""
        target = Target(principal, order_id, expected_version)
        return await self._transact(
            lambda uow: fulfilment.ship(uow, self._deps, target, tracking_code=tracking_code)
        )

    async def deliver(
        self, principal: Principal, order_id: str, *, expected_version: int | None = None
    ) -> Order:
        """Record that a shipped order arrived."""
        target = Target(principal, order_id, expected_version)
        return await self._transact(lambda uow: fulfilment.deliver(uow, self._deps, target))

    async def cancel(
        self,
        principal: Principal,
        order_id: str,
        *,
        reason: str = "",
        expected_version: int | None = None,
    ) -> Order:
        """Cancel a draft, placed or confirmed order; paid stock goes back, a refund follows."""
        target = Target(principal, order_id, expected_version)
        return await self._transact(
            lambda uow: fulfilment.cancel(uow, self._deps, target, reason=reason)
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
        """Reserve stock, charge the payment method (or test card) and place the order; see
        :mod:`mercato.orders.service.checkout`."""
        card, method = check_payment(card_number=card_number, payment_method=payment_method)
        begun = await self.begin_checkout(principal, order_id, card, expected_version)
        return await checkout.pay(self._transact, self._deps, begun, card=card, method=method)

    async def begin_checkout(
        self, principal: Principal, order_id: str, card: str | None, expected_version: int | None
    ) -> Checkout:
        """Phase 1 of placing: the stock reserved, the payment pending, the draft frozen."""
        target = Target(principal, order_id, expected_version)
        return await self._transact(
            lambda uow: checkout.begin_checkout(uow, self._deps, target, card)
        )

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
