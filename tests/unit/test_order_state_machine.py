"""The Order aggregate against a small model of its state machine (hypothesis stateful testing).

The model tracks status, checkout, lines (price, quantity, weight), address, discount and
version. After every step: the status and version match the model, a refused command raised
the expected DomainError and left the aggregate exactly as it was, and the totals equal the
documented pricing formula recomputed from the model with exact fractions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from mercato.kernel.errors import DomainError, InvalidValue, NotFound
from mercato.kernel.money import Money
from mercato.kernel.values import MAX_QUANTITY, Address, Quantity
from mercato.orders.domain import (
    CheckoutInProgress,
    InvalidTransition,
    Order,
    OrderNotDraft,
    PricingService,
    ProductInfo,
    ShippingCalculator,
    Status,
    Totals,
)
from mercato.orders.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderPlaced,
    OrderShipped,
)
from tests.unit.builders import ABROAD, HOME, RATES, draft, ticks

TAX_BP = 1900
CODES = {"WELCOME10": 10, "HALF": 50}
SHIP_RATES = dataclasses.replace(RATES, free_from=30_000)
PRODUCT_IDS = ["p1", "p2", "p3", "usd"]
EUR_PRODUCT_IDS = ["p1", "p2", "p3"]
STAGES = ["empty", "ready", "paying", "placed", "confirmed", "shipped"]

Refusal = tuple[type[DomainError], str] | None


@dataclasses.dataclass
class ModelLine:
    price: int
    quantity: int
    weight: int


def snapshot(order: Order) -> tuple[dict[str, Any], tuple[object, ...]]:
    """Everything observable about the aggregate, deep-copied."""
    return dataclasses.asdict(order), order.pending_events


class OrderMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ticks()
        self.pricing = PricingService(tax_rate_bp=TAX_BP, discount_codes=CODES)
        self.shipping = ShippingCalculator(SHIP_RATES)
        self.order = draft()
        self.catalog: dict[str, tuple[Money, int]] = {
            "p1": (Money(1000, "EUR"), 250),
            "p2": (Money(1999, "EUR"), 1200),
            "p3": (Money(5, "EUR"), 0),
            "usd": (Money(1500, "USD"), 300),
        }
        # the model
        self.status = Status.DRAFT
        self.in_checkout = False
        self.lines: dict[str, ModelLine] = {}
        self.address: Address | None = None
        self.discount = 0
        self.version = 1
        self.payments = 0

    # -- helpers ------------------------------------------------------------------------------

    def info(self, pid: str) -> ProductInfo:
        price, weight = self.catalog[pid]
        return ProductInfo(pid, pid.upper(), f"Product {pid}", price, weight)

    def editing_refusal(self) -> Refusal:
        if self.status is not Status.DRAFT:
            return OrderNotDraft, "order_not_draft"
        if self.in_checkout:
            return CheckoutInProgress, "checkout_in_progress"
        return None

    def attempt(self, change: Callable[[], None], refusal: Refusal) -> bool:
        """Run a command; check a refusal changed nothing, or that a change bumped the version."""
        before = snapshot(self.order)
        if refusal is not None:
            error, code = refusal
            with pytest.raises(DomainError) as exc:
                change()
            assert type(exc.value) is error
            assert exc.value.code == code
            assert snapshot(self.order) == before
            return False
        change()
        assert self.order.version == self.version + 1
        self.version += 1
        self.order.reprice(self.pricing, self.shipping)  # as the service does after each change
        return True

    def expect_events(self, *expected: type) -> list[Any]:
        events = self.order.pull_events()
        assert [type(e) for e in events] == list(expected)
        for event in events:
            assert event.version == self.order.version
            assert (event.order_id, event.customer_id) == (self.order.id, self.order.customer_id)
        return events

    # -- draft editing ------------------------------------------------------------------------

    @initialize(stage=st.sampled_from(STAGES))
    def start(self, stage: str) -> None:
        """Runs start at any stage, driven there by the rules, so every state is explored."""
        steps: dict[str, Callable[[], None]] = {
            "ready": self.make_placeable,
            "paying": self.begin_checkout,
            "placed": self.complete_checkout,
            "confirmed": self.confirm,
            "shipped": lambda: self.ship("DHL-1"),
        }
        for name in STAGES[1 : STAGES.index(stage) + 1]:
            steps[name]()

    def make_placeable(self) -> None:
        self.add_line("p1", 2)
        self.set_address(HOME)

    @rule(pid=st.sampled_from(PRODUCT_IDS), qty=st.integers(1, MAX_QUANTITY // 2 + 1))
    def add_line(self, pid: str, qty: int) -> None:
        info = self.info(pid)
        existing = self.lines.get(pid)
        refusal = self.editing_refusal()
        if refusal is None and info.price.currency != "EUR":
            refusal = InvalidValue, "currency_mismatch"
        if refusal is None and existing and existing.quantity + qty > MAX_QUANTITY:
            refusal = InvalidValue, "invalid_quantity"
        now = next(self.clock)
        if self.attempt(lambda: self.order.add_line(info, Quantity(qty), now=now), refusal):
            total = qty + (existing.quantity if existing else 0)
            self.lines[pid] = ModelLine(info.price.amount, total, info.weight_grams)
            self.expect_events()

    @rule(pid=st.sampled_from(EUR_PRODUCT_IDS), qty=st.integers(1, MAX_QUANTITY))
    def set_quantity(self, pid: str, qty: int) -> None:
        refusal = self.editing_refusal()
        if refusal is None and pid not in self.lines:
            refusal = NotFound, "line_not_found"
        now = next(self.clock)
        if self.attempt(lambda: self.order.set_quantity(pid, Quantity(qty), now=now), refusal):
            self.lines[pid].quantity = qty
            self.expect_events()

    @rule(pid=st.sampled_from(EUR_PRODUCT_IDS))
    def remove_line(self, pid: str) -> None:
        refusal = self.editing_refusal()
        if refusal is None and pid not in self.lines:
            refusal = NotFound, "line_not_found"
        now = next(self.clock)
        if self.attempt(lambda: self.order.remove_line(pid, now=now), refusal):
            del self.lines[pid]
            self.expect_events()

    @rule(address=st.sampled_from([HOME, ABROAD]))
    def set_address(self, address: Address) -> None:
        now = next(self.clock)
        if self.attempt(lambda: self.order.set_addresses(address, now=now), self.editing_refusal()):
            self.address = address
            self.expect_events()

    @rule(code=st.sampled_from([None, "WELCOME10", "half"]))
    def apply_discount(self, code: str | None) -> None:
        percent = self.pricing.discount_percent(code) if code else 0
        now = next(self.clock)
        if self.attempt(
            lambda: self.order.apply_discount(code, percent, now=now), self.editing_refusal()
        ):
            self.discount = percent
            self.expect_events()

    @rule(
        pid=st.sampled_from(EUR_PRODUCT_IDS),
        amount=st.integers(0, 100_000),
        currency=st.sampled_from(["EUR", "EUR", "EUR", "USD"]),
        weight=st.integers(0, 3000),
    )
    def change_catalog_price(self, pid: str, amount: int, currency: str, weight: int) -> None:
        """The shop changes a product; the order only sees it on add_line or checkout."""
        self.catalog[pid] = (Money(amount, currency), weight)

    # -- checkout -----------------------------------------------------------------------------

    @rule()
    def begin_checkout(self) -> None:
        refusal = self.editing_refusal()
        if refusal is None and not self.lines:
            refusal = InvalidValue, "empty_order"
        if refusal is None and self.address is None:
            refusal = InvalidValue, "missing_address"
        current = [self.info(pid) for pid in self.lines]
        if refusal is None and any(i.price.currency != "EUR" for i in current):
            refusal = InvalidValue, "currency_mismatch"
        self.payments += 1
        payment_id = f"pay-{self.payments}"
        now = next(self.clock)

        def begin() -> None:
            self.order.begin_checkout(
                payment_id, current, pricing=self.pricing, shipping=self.shipping, now=now
            )

        if self.attempt(begin, refusal):
            for info in current:
                self.lines[info.product_id].price = info.price.amount
                self.lines[info.product_id].weight = info.weight_grams
            self.in_checkout = True
            assert self.order.checkout_payment_id == payment_id
            self.expect_events()

    @rule()
    def abort_checkout(self) -> None:
        if not self.in_checkout:  # nothing to abort: a silent no-op
            before = snapshot(self.order)
            self.order.abort_checkout(now=next(self.clock))
            assert snapshot(self.order) == before
            return
        now = next(self.clock)
        assert self.attempt(lambda: self.order.abort_checkout(now=now), None)
        self.in_checkout = False
        self.expect_events()

    @rule()
    def complete_checkout(self) -> None:
        refusal: Refusal = None
        if self.status is not Status.DRAFT or not self.in_checkout:
            refusal = InvalidTransition, "invalid_transition"
        payment_id = self.order.checkout_payment_id
        now = next(self.clock)
        if self.attempt(lambda: self.order.complete_checkout(now=now), refusal):
            self.status, self.in_checkout = Status.PLACED, False
            [placed] = self.expect_events(OrderPlaced)
            assert placed.payment_id == payment_id
            assert placed.total == self.expected_totals().total.amount
            assert {ln["product_id"]: ln["quantity"] for ln in placed.lines} == {
                pid: line.quantity for pid, line in self.lines.items()
            }

    # -- the rest of the state machine --------------------------------------------------------

    def advance(self, change: Callable[[], None], source: Status, target: Status) -> bool:
        refusal: Refusal = None
        if self.status is not source:
            refusal = InvalidTransition, "invalid_transition"
        if self.attempt(change, refusal):
            self.status = target
            return True
        return False

    @rule()
    def confirm(self) -> None:
        now = next(self.clock)
        if self.advance(lambda: self.order.confirm(now=now), Status.PLACED, Status.CONFIRMED):
            self.expect_events(OrderConfirmed)

    @rule(tracking=st.sampled_from(["", "DHL-1"]))
    def ship(self, tracking: str) -> None:
        now = next(self.clock)

        def ship() -> None:
            self.order.ship(tracking_code=tracking, now=now)

        if self.advance(ship, Status.CONFIRMED, Status.SHIPPED):
            [shipped] = self.expect_events(OrderShipped)
            assert self.address is not None
            assert shipped.shipping_address == self.address.as_dict()

    @rule()
    def deliver(self) -> None:
        now = next(self.clock)
        if self.advance(lambda: self.order.deliver(now=now), Status.SHIPPED, Status.DELIVERED):
            self.expect_events(OrderDelivered)

    @rule()
    def cancel(self) -> None:
        refusal: Refusal = None
        if self.status not in {Status.DRAFT, Status.PLACED, Status.CONFIRMED}:
            refusal = InvalidTransition, "invalid_transition"
        elif self.in_checkout:
            refusal = CheckoutInProgress, "checkout_in_progress"
        previous = self.status
        now = next(self.clock)

        def cancel() -> None:
            self.order.cancel(reason="", cancelled_by="staff", now=now)

        if self.attempt(cancel, refusal):
            self.status = Status.CANCELLED
            [cancelled] = self.expect_events(OrderCancelled)
            assert cancelled.previous_status == previous.value
            assert cancelled.refund_due is (previous is not Status.DRAFT)

    # -- invariants ---------------------------------------------------------------------------

    def expected_totals(self) -> Totals:
        def half_even(numerator: int, denominator: int) -> int:
            return round(Fraction(numerator, denominator))

        subtotal = sum(ln.price * ln.quantity for ln in self.lines.values())
        discount = half_even(subtotal * self.discount, 100)
        grams = sum(ln.weight * ln.quantity for ln in self.lines.values())
        if self.address is None or subtotal - discount >= SHIP_RATES.free_from:
            shipping = 0
        elif self.address.country == SHIP_RATES.home_country:
            shipping = SHIP_RATES.domestic_base + SHIP_RATES.domestic_per_kg * -(-grams // 1000)
        else:
            per_kg = SHIP_RATES.international_per_kg
            shipping = SHIP_RATES.international_base + per_kg * -(-grams // 1000)
        tax = half_even((subtotal - discount + shipping) * TAX_BP, 10_000)
        total = subtotal - discount + shipping + tax
        return Totals(*(Money(v, "EUR") for v in (subtotal, discount, shipping, tax, total)))

    @invariant()
    def status_matches_the_model(self) -> None:
        assert self.order.status is self.status
        assert self.order.in_checkout is self.in_checkout

    @invariant()
    def version_matches_the_count_of_successful_changes(self) -> None:
        assert self.order.version == self.version

    @invariant()
    def lines_match_the_model(self) -> None:
        assert self.order.quantities() == {pid: ln.quantity for pid, ln in self.lines.items()}
        assert {pid: ln.unit_price.amount for pid, ln in self.order.lines.items()} == {
            pid: ln.price for pid, ln in self.lines.items()
        }

    @invariant()
    def totals_equal_the_recomputed_pricing(self) -> None:
        assert self.order.totals == self.expected_totals()

    @invariant()
    def no_events_are_left_unexamined(self) -> None:
        assert self.order.pending_events == ()


def test_the_order_aggregate_behaves_like_its_state_machine_model() -> None:
    run_state_machine_as_test(
        OrderMachine,
        settings=settings(max_examples=80, stateful_step_count=40, deadline=None),
    )
