"""The Order aggregate: draft editing, checkout and the state machine."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

import pytest

from mercato.kernel.errors import Conflict, InvalidValue, NotFound, PermissionDenied
from mercato.kernel.money import Money
from mercato.kernel.values import Quantity
from mercato.orders.domain import (
    MAX_LINES,
    CheckoutInProgress,
    InvalidTransition,
    Order,
    OrderLine,
    OrderNotDraft,
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
from tests.unit.builders import ABROAD, HOME, RATES, T0, draft, pricing, product, shipping, ticks

CLOCK = ticks()


def now() -> datetime:
    return next(CLOCK)


def placeable(order: Order | None = None) -> Order:
    order = order or draft()
    order.add_line(product(1, price=1000), Quantity(2), now=now())
    order.set_addresses(HOME, now=now())
    return order


def checking_out(order: Order | None = None, payment_id: str = "pay-1") -> Order:
    order = placeable(order)
    order.begin_checkout(
        payment_id, [product(1, price=1000)], pricing=pricing(), shipping=shipping(), now=now()
    )
    return order


def order_at(status: Status) -> Order:
    """An order driven through the state machine to ``status``, its events pulled."""
    if status is Status.DRAFT:
        order = placeable()
    elif status is Status.CANCELLED:
        order = placeable()
        order.cancel(reason="", cancelled_by="customer", now=now())
    else:
        order = checking_out()
        order.complete_checkout(now=now())
        steps: list[Callable[[], None]] = [
            lambda: order.confirm(now=now()),
            lambda: order.ship(tracking_code="TRACK-1", now=now()),
            lambda: order.deliver(now=now()),
        ]
        path = [Status.CONFIRMED, Status.SHIPPED, Status.DELIVERED]
        for step, reached in zip(steps, path, strict=True):
            if order.status is status:
                break
            step()
            assert order.status is reached
    assert order.status is status
    order.pull_events()
    return order


# -- a new draft ------------------------------------------------------------------------------


def test_a_new_order_is_an_empty_draft_at_version_one() -> None:
    order = draft(currency="USD")
    assert order.status is Status.DRAFT
    assert order.lines == {}
    assert order.version == 1
    assert order.totals == Totals.zero("USD")
    assert order.created_at == order.updated_at == T0
    assert not order.in_checkout
    assert order.pending_events == ()


def test_totals_zero_is_zero_in_every_part() -> None:
    zero = Money.zero("EUR")
    assert Totals.zero("EUR") == Totals(zero, zero, zero, zero, zero)


# -- lines ------------------------------------------------------------------------------------


def test_adding_a_line_records_the_product_at_its_price_and_bumps_the_version() -> None:
    order = draft()
    when = now()
    order.add_line(product(1, price=1999, weight_grams=300), Quantity(3), now=when)
    assert order.lines == {
        "prod-1": OrderLine("prod-1", "SKU-1", "Product 1", Money(1999, "EUR"), Quantity(3), 300)
    }
    assert order.lines["prod-1"].total == Money(5997, "EUR")
    assert order.version == 2
    assert order.updated_at == when


def test_adding_the_same_product_again_increases_the_quantity() -> None:
    order = draft()
    order.add_line(product(1, price=1000), Quantity(2), now=now())
    order.add_line(product(1, price=1100), Quantity(3), now=now())
    assert list(order.lines) == ["prod-1"]
    assert order.lines["prod-1"].quantity == Quantity(5)
    assert order.lines["prod-1"].unit_price == Money(1100, "EUR")
    assert order.version == 3


def test_adding_units_beyond_the_maximum_quantity_is_refused_and_keeps_the_line() -> None:
    order = draft()
    order.add_line(product(1), Quantity(9_999), now=now())
    with pytest.raises(InvalidValue) as exc:
        order.add_line(product(1), Quantity(2), now=now())
    assert exc.value.code == "invalid_quantity"
    assert order.lines["prod-1"].quantity == Quantity(9_999)
    assert order.version == 2


def test_adding_a_product_priced_in_another_currency_is_refused() -> None:
    order = draft(currency="EUR")
    with pytest.raises(InvalidValue) as exc:
        order.add_line(product(1, currency="USD"), Quantity(1), now=now())
    assert exc.value.code == "currency_mismatch"
    assert exc.value.field == "product_id"
    assert order.lines == {}
    assert order.version == 1


def test_an_order_holds_at_most_one_hundred_products() -> None:
    order = draft()
    for n in range(MAX_LINES):
        order.add_line(product(n), Quantity(1), now=now())
    with pytest.raises(InvalidValue) as exc:
        order.add_line(product(MAX_LINES), Quantity(1), now=now())
    assert exc.value.code == "too_many_lines"
    assert len(order.lines) == MAX_LINES
    assert "prod-100" not in order.lines
    assert order.version == 1 + MAX_LINES


def test_a_full_order_still_takes_more_units_of_a_product_it_has() -> None:
    order = draft()
    for n in range(MAX_LINES):
        order.add_line(product(n), Quantity(1), now=now())
    order.add_line(product(0), Quantity(4), now=now())
    assert order.lines["prod-0"].quantity == Quantity(5)


def test_setting_a_quantity_replaces_it() -> None:
    order = draft()
    order.add_line(product(1, price=700, weight_grams=50), Quantity(2), now=now())
    order.set_quantity("prod-1", Quantity(7), now=now())
    line = order.lines["prod-1"]
    assert (line.quantity, line.unit_price, line.weight_grams) == (
        Quantity(7),
        Money(700, "EUR"),
        50,
    )
    assert order.version == 3


def test_removing_a_line_takes_the_product_off_the_order() -> None:
    order = draft()
    order.add_line(product(1), Quantity(1), now=now())
    order.add_line(product(2), Quantity(1), now=now())
    order.remove_line("prod-1", now=now())
    assert list(order.lines) == ["prod-2"]
    assert order.version == 4


@pytest.mark.parametrize(
    "change",
    [
        lambda o: o.set_quantity("prod-9", Quantity(2), now=now()),
        lambda o: o.remove_line("prod-9", now=now()),
    ],
    ids=["set_quantity", "remove_line"],
)
def test_changing_a_line_the_order_does_not_have_is_refused(
    change: Callable[[Order], None],
) -> None:
    order = draft()
    order.add_line(product(1), Quantity(1), now=now())
    with pytest.raises(NotFound) as exc:
        change(order)
    assert exc.value.code == "line_not_found"
    assert order.quantities() == {"prod-1": 1}
    assert order.version == 2


def test_the_parcel_weight_and_quantities_sum_over_the_lines() -> None:
    order = draft()
    order.add_line(product(1, weight_grams=250), Quantity(2), now=now())
    order.add_line(product(2, weight_grams=1000), Quantity(3), now=now())
    assert order.weight_grams == 3500
    assert order.quantities() == {"prod-1": 2, "prod-2": 3}


EDITS: dict[str, Callable[[Order], None]] = {
    "add_line": lambda o: o.add_line(product(5), Quantity(1), now=now()),
    "set_quantity": lambda o: o.set_quantity("prod-1", Quantity(9), now=now()),
    "remove_line": lambda o: o.remove_line("prod-1", now=now()),
    "set_addresses": lambda o: o.set_addresses(ABROAD, now=now()),
    "apply_discount": lambda o: o.apply_discount("WELCOME10", 10, now=now()),
}


@pytest.mark.parametrize(
    "status", [Status.PLACED, Status.CONFIRMED, Status.SHIPPED, Status.DELIVERED, Status.CANCELLED]
)
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_only_draft_orders_can_be_edited(status: Status, edit: str) -> None:
    order = order_at(status)
    version, lines, address = order.version, dict(order.lines), order.shipping_address
    with pytest.raises(OrderNotDraft) as exc:
        EDITS[edit](order)
    assert exc.value.code == "order_not_draft"
    assert exc.value.data["order_status"] == status.value
    assert (order.version, order.lines, order.shipping_address) == (version, lines, address)


# -- addresses and discounts ------------------------------------------------------------------


def test_the_billing_address_defaults_to_the_shipping_address() -> None:
    order = draft()
    order.set_addresses(HOME, now=now())
    assert (order.shipping_address, order.billing_address) == (HOME, HOME)
    order.set_addresses(HOME, ABROAD, now=now())
    assert (order.shipping_address, order.billing_address) == (HOME, ABROAD)
    assert order.version == 3


def test_a_discount_code_is_stored_trimmed_and_upper_cased() -> None:
    order = draft()
    order.apply_discount(" welcome10 ", 10, now=now())
    assert (order.discount_code, order.discount_percent, order.version) == ("WELCOME10", 10, 2)


def test_removing_the_discount_code_resets_the_percentage() -> None:
    order = draft()
    order.apply_discount("HALF", 50, now=now())
    order.apply_discount(None, 50, now=now())
    assert (order.discount_code, order.discount_percent, order.version) == (None, 0, 3)


@pytest.mark.parametrize("percent", [-1, 101])
def test_a_discount_outside_zero_to_one_hundred_percent_is_refused(percent: int) -> None:
    order = draft()
    with pytest.raises(InvalidValue) as exc:
        order.apply_discount("ODD", percent, now=now())
    assert exc.value.code == "invalid_discount_code"
    assert (order.discount_code, order.discount_percent, order.version) == (None, 0, 1)


def test_repricing_applies_discount_shipping_and_tax() -> None:
    order = draft()
    order.add_line(product(1, price=1999, weight_grams=600), Quantity(2), now=now())
    order.add_line(product(2, price=500, weight_grams=500), Quantity(1), now=now())
    order.apply_discount("WELCOME10", 10, now=now())
    order.set_addresses(HOME, now=now())
    order.reprice(pricing(), shipping())
    # subtotal 4498; discount 449.8 -> 450; 1.7 kg domestic -> 490 + 2 x 100 = 690;
    # tax 19 % of (4498 - 450 + 690 = 4738) = 900.22 -> 900; total 5638.
    assert order.totals == Totals(
        Money(4498, "EUR"),
        Money(450, "EUR"),
        Money(690, "EUR"),
        Money(900, "EUR"),
        Money(5638, "EUR"),
    )


def test_repricing_without_an_address_charges_no_shipping_yet() -> None:
    order = draft()
    order.add_line(product(1, price=1000), Quantity(1), now=now())
    order.reprice(pricing(), shipping())
    assert order.totals is not None
    assert order.totals.shipping == Money(0, "EUR")
    assert order.totals.total == Money(1190, "EUR")


def test_free_shipping_is_judged_on_the_discounted_merchandise() -> None:
    rates = dataclasses.replace(RATES, free_from=5000)
    order = draft()
    order.add_line(product(1, price=5000), Quantity(1), now=now())
    order.set_addresses(HOME, now=now())
    order.reprice(pricing(), shipping(rates))
    assert order.totals is not None
    assert order.totals.shipping == Money(0, "EUR")
    order.apply_discount("WELCOME10", 10, now=now())
    order.reprice(pricing(), shipping(rates))
    assert order.totals.shipping == Money(590, "EUR")


def test_only_the_customer_who_owns_the_order_passes_the_owner_check() -> None:
    order = draft()
    order.ensure_owner("cust-1")
    with pytest.raises(PermissionDenied) as exc:
        order.ensure_owner("cust-2")
    assert exc.value.code == "not_order_owner"


# -- ensure_placeable and checkout ------------------------------------------------------------


def test_an_order_without_lines_cannot_be_placed() -> None:
    order = draft()
    order.set_addresses(HOME, now=now())
    with pytest.raises(InvalidValue) as exc:
        order.ensure_placeable()
    assert exc.value.code == "empty_order"
    assert exc.value.field == "lines"


def test_an_order_without_a_shipping_address_cannot_be_placed() -> None:
    order = draft()
    order.add_line(product(1), Quantity(1), now=now())
    with pytest.raises(InvalidValue) as exc:
        order.ensure_placeable()
    assert exc.value.code == "missing_address"
    assert exc.value.field == "shipping_address"


def test_a_draft_with_lines_and_an_address_is_placeable() -> None:
    order = placeable()
    version = order.version
    order.ensure_placeable()
    assert (order.status, order.version) == (Status.DRAFT, version)


def test_a_placed_order_is_not_placeable_again() -> None:
    with pytest.raises(OrderNotDraft):
        order_at(Status.PLACED).ensure_placeable()


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda o: None, "empty_order"),
        (lambda o: o.add_line(product(1), Quantity(1), now=now()), "missing_address"),
    ],
)
def test_beginning_checkout_of_an_unplaceable_draft_is_refused_and_changes_nothing(
    setup: Callable[[Order], None], code: str
) -> None:
    order = draft()
    setup(order)
    version = order.version
    with pytest.raises(InvalidValue) as exc:
        order.begin_checkout("pay-1", [], pricing=pricing(), shipping=shipping(), now=now())
    assert exc.value.code == code
    assert (order.in_checkout, order.version) == (False, version)


def test_beginning_checkout_reprices_at_current_prices_and_freezes_the_draft() -> None:
    order = placeable()  # 2 x 10.00, 250 g each, shipped to Germany
    version = order.version
    when = now()
    order.begin_checkout(
        "pay-1",
        [product(1, price=1200, weight_grams=600)],
        pricing=pricing(),
        shipping=shipping(),
        now=when,
    )
    assert order.in_checkout
    assert order.checkout_payment_id == "pay-1"
    assert order.status is Status.DRAFT
    assert order.version == version + 1
    assert order.updated_at == when
    line = order.lines["prod-1"]
    assert (line.unit_price, line.weight_grams, line.quantity) == (
        Money(1200, "EUR"),
        600,
        Quantity(2),
    )
    # subtotal 2400; shipping 1.2 kg -> 490 + 200 = 690; tax 19 % of 3090 = 587.1 -> 587
    assert order.totals == Totals(
        Money(2400, "EUR"),
        Money(0, "EUR"),
        Money(690, "EUR"),
        Money(587, "EUR"),
        Money(3677, "EUR"),
    )
    assert order.pending_events == ()


def test_a_checkout_refused_for_a_product_now_sold_in_another_currency_changes_nothing() -> None:
    order = draft()
    order.add_line(product(1, price=1000), Quantity(1), now=now())
    order.add_line(product(2, price=2000), Quantity(1), now=now())
    order.set_addresses(HOME, now=now())
    lines, version = dict(order.lines), order.version
    with pytest.raises(InvalidValue) as exc:
        order.begin_checkout(
            "pay-1",
            [product(1, price=1500), product(2, price=2000, currency="USD")],
            pricing=pricing(),
            shipping=shipping(),
            now=now(),
        )
    assert exc.value.code == "currency_mismatch"
    assert order.lines == lines
    assert (order.in_checkout, order.version) == (False, version)


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_draft_in_checkout_cannot_be_edited(edit: str) -> None:
    order = checking_out()
    version, lines = order.version, dict(order.lines)
    with pytest.raises(CheckoutInProgress) as exc:
        EDITS[edit](order)
    assert exc.value.code == "checkout_in_progress"
    assert (order.version, order.lines) == (version, lines)


def test_a_draft_in_checkout_cannot_begin_another_checkout_or_be_cancelled() -> None:
    order = checking_out(payment_id="pay-1")
    with pytest.raises(CheckoutInProgress):
        order.begin_checkout("pay-2", [], pricing=pricing(), shipping=shipping(), now=now())
    with pytest.raises(CheckoutInProgress):
        order.cancel(reason="", cancelled_by="customer", now=now())
    assert (order.checkout_payment_id, order.status) == ("pay-1", Status.DRAFT)


def test_aborting_checkout_reopens_the_draft_for_editing() -> None:
    order = checking_out()
    version = order.version
    order.abort_checkout(now=now())
    assert not order.in_checkout
    assert order.status is Status.DRAFT
    assert order.version == version + 1
    order.add_line(product(2), Quantity(1), now=now())
    assert set(order.lines) == {"prod-1", "prod-2"}
    assert order.pending_events == ()


def test_aborting_when_no_checkout_is_under_way_changes_nothing() -> None:
    order = placeable()
    version, updated_at = order.version, order.updated_at
    order.abort_checkout(now=now())
    assert (order.version, order.updated_at) == (version, updated_at)


def test_completing_checkout_places_the_order_and_records_order_placed() -> None:
    order = draft()
    order.add_line(product(1, price=1000), Quantity(2), now=now())
    order.add_line(product(2, price=250), Quantity(1), now=now())
    order.set_addresses(HOME, now=now())
    order.begin_checkout(
        "pay-7",
        [product(1, price=1000), product(2, price=250)],
        pricing=pricing(),
        shipping=shipping(),
        now=now(),
    )
    version = order.version
    when = now()
    order.complete_checkout(now=when)
    assert order.status is Status.PLACED
    assert order.placed_at == when
    assert not order.in_checkout
    assert order.version == version + 1
    assert order.totals is not None
    # subtotal 2250; 0.75 kg domestic -> 590; tax 19 % of 2840 = 539.6 -> 540; total 3380
    assert order.totals.total == Money(3380, "EUR")
    assert order.pull_events() == [
        OrderPlaced(
            order_id="order-1",
            customer_id="cust-1",
            version=version + 1,
            payment_id="pay-7",
            total=3380,
            currency="EUR",
            lines=[
                {"product_id": "prod-1", "sku": "SKU-1", "quantity": 2, "unit_price": 1000},
                {"product_id": "prod-2", "sku": "SKU-2", "quantity": 1, "unit_price": 250},
            ],
        )
    ]


def test_completing_checkout_that_was_never_begun_is_an_invalid_transition() -> None:
    order = placeable()
    version = order.version
    with pytest.raises(InvalidTransition) as exc:
        order.complete_checkout(now=now())
    assert exc.value.code == "invalid_transition"
    assert exc.value.data == {"order_status": "draft", "action": "place"}
    assert (order.status, order.version, order.placed_at) == (Status.DRAFT, version, None)
    assert order.pending_events == ()


# -- confirm, ship, deliver -------------------------------------------------------------------


def test_confirming_a_placed_order_records_order_confirmed() -> None:
    order = order_at(Status.PLACED)
    version = order.version
    order.confirm(now=now())
    assert (order.status, order.version) == (Status.CONFIRMED, version + 1)
    assert order.pull_events() == [
        OrderConfirmed(order_id="order-1", customer_id="cust-1", version=version + 1)
    ]


def test_shipping_a_confirmed_order_records_the_tracking_code_and_address() -> None:
    order = order_at(Status.CONFIRMED)
    version = order.version
    order.ship(tracking_code="  DHL-123 ", now=now())
    assert (order.status, order.version, order.tracking_code) == (
        Status.SHIPPED,
        version + 1,
        "DHL-123",
    )
    assert order.pull_events() == [
        OrderShipped(
            order_id="order-1",
            customer_id="cust-1",
            version=version + 1,
            tracking_code="DHL-123",
            shipping_address=HOME.as_dict(),
        )
    ]


def test_shipping_without_a_tracking_code_stores_none() -> None:
    order = order_at(Status.CONFIRMED)
    order.ship(tracking_code="   ", now=now())
    assert order.tracking_code is None
    [event] = order.pull_events()
    assert isinstance(event, OrderShipped)
    assert event.tracking_code == ""


def test_delivering_a_shipped_order_records_order_delivered() -> None:
    order = order_at(Status.SHIPPED)
    version = order.version
    order.deliver(now=now())
    assert (order.status, order.version) == (Status.DELIVERED, version + 1)
    assert order.pull_events() == [
        OrderDelivered(order_id="order-1", customer_id="cust-1", version=version + 1)
    ]


TRANSITIONS: dict[str, tuple[Status, Callable[[Order], None]]] = {
    "confirm": (Status.PLACED, lambda o: o.confirm(now=now())),
    "ship": (Status.CONFIRMED, lambda o: o.ship(tracking_code="T", now=now())),
    "deliver": (Status.SHIPPED, lambda o: o.deliver(now=now())),
}


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (action, status)
        for action, (source, _) in sorted(TRANSITIONS.items())
        for status in Status
        if status is not source
    ],
)
def test_transitions_from_the_wrong_status_are_refused(action: str, status: Status) -> None:
    order = order_at(status)
    version = order.version
    with pytest.raises(InvalidTransition) as exc:
        TRANSITIONS[action][1](order)
    assert exc.value.code == "invalid_transition"
    assert exc.value.data == {"order_status": status.value, "action": action}
    assert isinstance(exc.value, Conflict)
    assert (order.status, order.version) == (status, version)
    assert order.pending_events == ()


# -- cancel -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "refund_due"),
    [(Status.DRAFT, False), (Status.PLACED, True), (Status.CONFIRMED, True)],
)
def test_cancelling_records_order_cancelled_with_a_refund_only_when_paid(
    status: Status, refund_due: bool
) -> None:
    order = order_at(status)
    version = order.version
    previous = order.cancel(reason="  changed my mind ", cancelled_by="customer", now=now())
    assert previous is status
    assert (order.status, order.version, order.cancel_reason) == (
        Status.CANCELLED,
        version + 1,
        "changed my mind",
    )
    assert order.pull_events() == [
        OrderCancelled(
            order_id="order-1",
            customer_id="cust-1",
            version=version + 1,
            reason="changed my mind",
            previous_status=status.value,
            cancelled_by="customer",
            refund_due=refund_due,
        )
    ]


def test_cancelling_without_a_reason_says_so() -> None:
    order = order_at(Status.PLACED)
    order.cancel(reason="   ", cancelled_by="staff", now=now())
    assert order.cancel_reason == "no reason given"
    [event] = order.pull_events()
    assert isinstance(event, OrderCancelled)
    assert (event.reason, event.cancelled_by) == ("no reason given", "staff")


@pytest.mark.parametrize("status", [Status.SHIPPED, Status.DELIVERED, Status.CANCELLED])
def test_cancelling_after_shipping_or_twice_is_an_invalid_transition(status: Status) -> None:
    order = order_at(status)
    version = order.version
    with pytest.raises(InvalidTransition) as exc:
        order.cancel(reason="", cancelled_by="staff", now=now())
    assert exc.value.code == "invalid_transition"
    assert exc.value.data == {"order_status": status.value, "action": "cancel"}
    assert (order.status, order.version) == (status, version)


def test_a_cancel_reason_longer_than_500_characters_is_refused() -> None:
    order = order_at(Status.PLACED)
    version = order.version
    with pytest.raises(InvalidValue) as exc:
        order.cancel(reason="x" * 501, cancelled_by="customer", now=now())
    assert exc.value.code == "invalid_reason"
    assert (order.status, order.version) == (Status.PLACED, version)
    order.cancel(reason="x" * 500, cancelled_by="customer", now=now())
    assert order.cancel_reason == "x" * 500


def test_the_version_goes_up_by_one_with_every_change() -> None:
    order = draft()
    changes: list[Callable[[], None]] = [
        lambda: order.add_line(product(1), Quantity(1), now=now()),
        lambda: order.add_line(product(1), Quantity(1), now=now()),
        lambda: order.set_quantity("prod-1", Quantity(3), now=now()),
        lambda: order.set_addresses(HOME, now=now()),
        lambda: order.apply_discount("HALF", 50, now=now()),
        lambda: order.begin_checkout(
            "p", [product(1)], pricing=pricing(), shipping=shipping(), now=now()
        ),
        lambda: order.complete_checkout(now=now()),
        lambda: order.confirm(now=now()),
        lambda: order.ship(tracking_code="", now=now()),
        lambda: order.deliver(now=now()),
    ]
    versions = [order.version]
    for change in changes:
        change()
        versions.append(order.version)
    assert versions == list(range(1, len(changes) + 2))


@pytest.mark.parametrize(
    "status", [Status.PLACED, Status.CONFIRMED, Status.SHIPPED, Status.DELIVERED, Status.CANCELLED]
)
def test_a_paid_or_closed_order_keeps_its_totals_when_prices_and_rates_change(
    status: Status,
) -> None:
    order = order_at(status)
    charged = order.totals

    order.reprice(pricing(tax_rate_bp=2500), shipping(dataclasses.replace(RATES, domestic_base=9)))

    assert order.totals == charged
