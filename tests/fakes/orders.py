"""In-memory fakes for the orders use cases: the order repository and what orders needs of
catalog, customers and payments (their protocols), each keeping its rows in the
:class:`~tests.fakes.FakeTransactor`'s tables so a failed unit of work undoes them too.

The fakes keep the rules the orders module relies on: stock is reserved all or nothing and
never below zero; a customer must exist and be active; a payment settles once; the provider
answers each idempotency key the same way every time it is asked.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mercato.catalog import OutOfStock, ProductInactive, ProductNotFound, ReservedLine
from mercato.catalog.events import ReservationExpired
from mercato.customers import CustomerInactive, CustomerNotFound
from mercato.kernel.clock import utcnow
from mercato.kernel.money import Money
from mercato.kernel.values import Address
from mercato.orders import NewLine, OrdersService
from mercato.orders.domain import (
    Order,
    OrderConflict,
    PricingService,
    ShippingCalculator,
    ShippingRates,
    Status,
)
from mercato.orders.service import CheckoutReconciler, ReservationSweeper
from mercato.orders.store import OrderHead, OrderRepository
from mercato.payments import ChargeResult, Outcome, Payment, PaymentMeans, PaymentOpening
from mercato.payments import Status as PaymentStatus
from mercato.platform.security import Principal, Role
from mercato.platform.uow import UnitOfWork
from tests.fakes import FakeTransactor, fake_for, tables_of


def _stored(order: Order) -> Order:
    """A copy of the order as a row would hold it (no pending events)."""
    row = copy.deepcopy(order)
    row.pull_events()
    return row


@fake_for(OrderRepository)
class FakeOrderRepository(OrderRepository):
    """Orders in ``tables["orders"]``; loads hand out copies, as rows do."""

    def _rows(self) -> dict[str, Order]:
        rows: dict[str, Order] = tables_of(self._uow).setdefault("orders", {})
        return rows

    async def get(self, order_id: str, *, lock: bool = False) -> Order | None:
        row = self._rows().get(order_id)
        return None if row is None else self._loaded(copy.deepcopy(row))

    async def lock_with_customer(self, order_id: str) -> tuple[Order, bool] | None:
        return None  # as on SQLite: the order and the customer are asked for on their own

    async def save_with_payment(self, order: Order, payment: Payment) -> bool:
        return False  # as on SQLite: the payment and the order are written on their own

    async def add(self, order: Order) -> None:
        if order.id in self._rows():
            raise AssertionError(f"order {order.id} inserted twice")
        self._rows()[order.id] = _stored(order)
        self._loaded(order)

    async def head(self, order_id: str) -> OrderHead | None:
        row = self._rows().get(order_id)
        return None if row is None else OrderHead(row.id, row.customer_id, row.status, row.version)

    async def page(
        self, *, customer_id: str | None, status: Status | None, before: str | None, limit: int
    ) -> list[Order]:
        found = [
            copy.deepcopy(row)
            for row in sorted(self._rows().values(), key=lambda o: o.id, reverse=True)
            if (before is None or row.id < before)
            and customer_id in (None, row.customer_id)
            and status in (None, row.status)
        ]
        return found[:limit]

    async def _write(self, aggregate: Order, *, expected: Hashable) -> bool:
        if self._rows()[aggregate.id].version != expected:
            return False
        self._rows()[aggregate.id] = _stored(aggregate)
        return True

    async def _conflict(self, aggregate: Order) -> Exception:
        return OrderConflict(aggregate.id, current_version=self._rows()[aggregate.id].version)


@dataclass
class StockRow:
    """One product as the catalog holds it for orders."""

    line: ReservedLine
    available: int
    reserved: int = 0
    sold: int = 0
    active: bool = True


@dataclass
class Hold:
    """One reservation: units of a product held (then sold, released or returned) for an order."""

    order_id: str
    product_id: str
    quantity: int
    expires_at: datetime
    state: str = "active"


class FakeStock:
    """What orders needs of the catalog (``StockForOrders``), in memory."""

    def __init__(self, transact: FakeTransactor) -> None:
        self._transact = transact
        self.meanwhile: Callable[[], None] | None = None  # runs as a product is described

    def add_product(
        self, product_id: str, *, stock: int, price: int = 1000, currency: str = "EUR"
    ) -> None:
        """Put a product on sale with ``stock`` units available."""
        price_of = Money(price, currency)
        line = ReservedLine(product_id, f"SKU-{product_id}", product_id, price_of, 250, 0)
        self._transact.tables.setdefault("stock", {})[product_id] = StockRow(line, stock)

    def row(self, product_id: str) -> StockRow:
        """A product's current stock counters."""
        found: StockRow = self._transact.tables["stock"][product_id]
        return found

    def holds(self, order_id: str) -> list[Hold]:
        """An order's reservations, in every state."""
        return [h for h in self._transact.tables.get("holds", []) if h.order_id == order_id]

    @staticmethod
    def _products(uow: UnitOfWork) -> dict[str, StockRow]:
        rows: dict[str, StockRow] = tables_of(uow).setdefault("stock", {})
        return rows

    @staticmethod
    def _holds(uow: UnitOfWork) -> list[Hold]:
        holds: list[Hold] = tables_of(uow).setdefault("holds", [])
        return holds

    async def describe_for_order(self, uow: UnitOfWork, product_id: str) -> ReservedLine:
        if self.meanwhile is not None:
            self.meanwhile()
        row = self._products(uow).get(product_id)
        if row is None:
            raise ProductNotFound(product_id)
        if not row.active:
            raise ProductInactive(product_id)
        return row.line

    async def reserve(
        self, uow: UnitOfWork, order_id: str, quantities: dict[str, int], *, expires_at: datetime
    ) -> list[ReservedLine]:
        reserved = []
        for product_id in sorted(quantities):
            row = self._products(uow).get(product_id)
            qty = quantities[product_id]
            if row is None:
                raise ProductNotFound(product_id)
            if row.available < qty:
                raise OutOfStock(product_id, requested=qty, available=row.available)
            row.available -= qty
            row.reserved += qty
            self._holds(uow).append(Hold(order_id, product_id, qty, expires_at))
            reserved.append(dataclasses.replace(row.line, quantity=qty))
        return reserved

    def _move(self, uow: UnitOfWork, order_id: str, source: str, target: str) -> list[Hold]:
        moved = [h for h in self._holds(uow) if h.order_id == order_id and h.state == source]
        for hold in moved:
            hold.state = target
        return moved

    async def commit_reservation(self, uow: UnitOfWork, order_id: str) -> None:
        for hold in self._move(uow, order_id, "active", "committed"):
            row = self._products(uow)[hold.product_id]
            row.reserved -= hold.quantity
            row.sold += hold.quantity

    async def release_reservation(
        self, uow: UnitOfWork, order_id: str, *, expired: bool = False
    ) -> None:
        for hold in self._move(uow, order_id, "active", "released"):
            row = self._products(uow)[hold.product_id]
            row.reserved -= hold.quantity
            row.available += hold.quantity
            if expired:
                uow.add(
                    ReservationExpired(
                        product_id=hold.product_id, order_id=order_id, quantity=hold.quantity
                    )
                )

    async def return_stock(self, uow: UnitOfWork, order_id: str) -> None:
        for hold in self._move(uow, order_id, "committed", "returned"):
            row = self._products(uow)[hold.product_id]
            row.sold -= hold.quantity
            row.available += hold.quantity

    async def expired_reservations(self, *, limit: int) -> list[str]:
        now = utcnow()
        holds = self._transact.tables.get("holds", [])
        expired = [h.order_id for h in holds if h.state == "active" and h.expires_at <= now]
        return list(dict.fromkeys(expired))[:limit]


class FakeCustomers:
    """What orders needs of customers (``CustomersForOrders``): who may order."""

    def __init__(self) -> None:
        self.active: dict[str, bool] = {}

    async def ensure_can_order(self, uow: UnitOfWork, customer_id: str) -> None:
        active = self.active.get(customer_id)
        if active is None:
            raise CustomerNotFound(customer_id)
        if not active:
            raise CustomerInactive(customer_id)


@dataclass
class FakeProvider:
    """A card processor's memory: one answer per idempotency key, whoever asks.

    ``answer`` is what the next new charge gets (None: the call is lost, the provider never
    saw it); ``unreachable`` makes every call fail as a network error would; ``meanwhile`` runs
    while a charge is on the wire, before the provider records it (a slow network).
    """

    answer: ChargeResult | None = field(default_factory=lambda: ChargeResult(Outcome.CAPTURED))
    unreachable: bool = False
    meanwhile: Callable[[], Awaitable[None]] | None = None
    charges: dict[str, ChargeResult] = field(default_factory=dict)
    refunds: list[str] = field(default_factory=list)


class FakePayments:
    """What orders needs of payments (``PaymentsForOrders``), over a scripted provider."""

    def __init__(self, transact: FakeTransactor, provider: FakeProvider | None = None) -> None:
        self._transact = transact
        self.provider = provider or FakeProvider()

    def _rows(self, tables: dict[str, Any]) -> dict[str, Payment]:
        rows: dict[str, Payment] = tables.setdefault("payments", {})
        return rows

    async def open(self, uow: UnitOfWork, opening: PaymentOpening) -> Payment:
        payment = self.prepare(opening)
        await self.record(uow, payment)
        return payment

    def prepare(self, opening: PaymentOpening) -> Payment:
        return Payment.open(
            id=opening.payment_id,
            order_id=opening.order_id,
            amount=opening.amount,
            provider="fake",
            card_last4=opening.means.card_last4,
            now=utcnow(),
        )

    async def record(self, uow: UnitOfWork, payment: Payment) -> None:
        self._rows(tables_of(uow))[payment.id] = copy.deepcopy(payment)

    async def charge(self, payment: Payment, means: PaymentMeans) -> ChargeResult | None:
        if self.provider.unreachable:
            return None
        if self.provider.meanwhile is not None:
            await self.provider.meanwhile()
        answer = self.provider.charges.get(payment.idempotency_key, self.provider.answer)
        if answer is not None:
            self.provider.charges[payment.idempotency_key] = answer
        return answer

    async def settle(self, uow: UnitOfWork, payment_id: str, result: ChargeResult) -> Payment:
        rows = self._rows(tables_of(uow))
        payment = copy.deepcopy(rows[payment_id])
        if payment.status is PaymentStatus.PENDING:
            payment.settle(result, now=utcnow())
            uow.add(*payment.pull_events())
            rows[payment_id] = copy.deepcopy(payment)
        return payment

    async def settle_opened(
        self, uow: UnitOfWork, opened: Payment, result: ChargeResult
    ) -> Payment:
        return await self.settle(uow, opened.id, result)

    async def refund_late_capture(self, payment: Payment, result: ChargeResult) -> None:
        self.provider.refunds.append(payment.id)

    async def lookup(self, payment: Payment) -> ChargeResult | None:
        if self.provider.unreachable:
            raise ConnectionError("provider unreachable")
        return self.provider.charges.get(payment.idempotency_key)

    async def list_for_order(self, order_id: str) -> list[Payment]:
        rows = self._rows(self._transact.tables).values()
        return [copy.deepcopy(p) for p in rows if p.order_id == order_id]

    async def stale_pending(self, *, older_than: timedelta, limit: int) -> list[Payment]:
        before = utcnow() - older_than
        rows = self._rows(self._transact.tables).values()
        stale = [p for p in rows if p.status is PaymentStatus.PENDING and p.created_at <= before]
        return [copy.deepcopy(p) for p in stale[:limit]]

    def stored(self, payment_id: str) -> Payment:
        """A payment as recorded now."""
        return self._rows(self._transact.tables)[payment_id]


STAFF = Principal("staff-1", Role.STAFF)
HOME = Address(street="Unter den Linden 1", city="Berlin", country="DE", postal_code="10117")


class OrdersWorld:
    """The orders service wired to the fakes, with the workers and a few builders."""

    def __init__(self, *, reservation_ttl_s: int = 900) -> None:
        self.transact = FakeTransactor()
        self.stock = FakeStock(self.transact)
        self.customers = FakeCustomers()
        self.payments = FakePayments(self.transact)
        self.pricing = PricingService(tax_rate_bp=1900, discount_codes={"WELCOME10": 10})
        self.orders = OrdersService(
            self.transact,
            catalog=self.stock,
            customers=self.customers,
            payments=self.payments,
            pricing=self.pricing,
            shipping=ShippingCalculator(
                ShippingRates(
                    home_country="DE",
                    domestic_base=490,
                    domestic_per_kg=100,
                    international_base=1490,
                    international_per_kg=350,
                )
            ),
            currency="EUR",
            reservation_ttl_s=reservation_ttl_s,
        )
        self.reconciler = CheckoutReconciler(self.orders, self.payments, grace_s=0)
        self.sweeper = ReservationSweeper(self.orders, self.stock, self.payments)

    def customer(self, name: str = "cust-1", *, active: bool = True) -> Principal:
        """A customer who may (or, inactive, may not) order."""
        self.customers.active[name] = active
        return Principal(name, Role.CUSTOMER)

    async def draft(
        self, owner: Principal, lines: dict[str, int], *, address: bool = True
    ) -> Order:
        """A draft of ``owner`` with these lines (products created with ample stock as needed)."""
        for product_id in lines:
            if product_id not in self.transact.tables.get("stock", {}):
                self.stock.add_product(product_id, stock=10)
        return await self.orders.create(
            owner,
            lines=[NewLine(pid, qty) for pid, qty in lines.items()],
            shipping_address=HOME if address else None,
        )

    def stored(self, order_id: str) -> Order:
        """An order as its row holds it now."""
        found: Order = self.transact.tables["orders"][order_id]
        return found
