"""The orders service end to end below HTTP: drafts, checkout with each sandbox card, cancel."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.catalog import OutOfStock, ProductChanges
from mercato.customers import CustomerInactive
from mercato.kernel.ids import new_id
from mercato.kernel.money import Money
from mercato.orders import Status
from mercato.orders.domain import CheckoutInProgress, OrderConflict
from mercato.payments import (
    DECLINED_CARD,
    ERROR_CARD,
    SUCCESS_CARD,
    AlreadyPaid,
    PaymentDeclined,
    PaymentMeans,
    ProviderError,
)
from mercato.payments import Status as PaymentStatus
from mercato.payments.domain import Payment
from mercato.payments.store import PaymentRepository, payments
from mercato.platform.db import UniqueViolation, sql
from mercato.platform.uow import UnitOfWork
from tests.integration.helpers import (
    assert_stock_balances,
    customer,
    draft,
    outbox_rows,
    product,
    relay_until,
    reservation_rows,
    stock,
)

pytestmark = pytest.mark.anyio

_INSERT_PAYMENT = sql(
    sa.insert(payments).values({c.name: sa.bindparam(c.name) for c in payments.c})
)


async def test_a_draft_collects_lines_and_prices_them(container: Container) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5, price=1000, weight=500)
    gadget = await product(container, stock=5, price=250, weight=100)

    order = await draft(container, owner, {widget.id: 1})
    order = await container.orders.add_line(owner, order.id, product_id=widget.id, quantity=1)
    order = await container.orders.add_line(
        owner, order.id, product_id=gadget.id, quantity=2, expected_version=order.version
    )
    with pytest.raises(OrderConflict):
        await container.orders.add_line(
            owner, order.id, product_id=gadget.id, quantity=1, expected_version=order.version - 1
        )

    stored = await container.orders.get(owner, order.id)
    assert stored.status is Status.DRAFT
    assert stored.version == order.version
    assert {pid: line.quantity.value for pid, line in stored.lines.items()} == {
        widget.id: 2,
        gadget.id: 2,
    }
    assert stored.totals is not None
    assert stored.totals == order.totals
    totals = stored.totals
    assert totals.subtotal == Money(2500, "EUR")
    # 1.2 kg ships domestic: 4.90 + 2 started kg x 1.00; 19 % tax on goods and shipping
    assert totals.shipping == Money(690, "EUR")
    assert totals.tax == Money(606, "EUR")
    assert totals.total == Money(2500 + 690 + 606, "EUR")
    assert await stock(container, widget.id) == (5, 0, 0)  # drafts reserve nothing


async def test_placing_with_a_good_card_sells_the_stock_and_captures_once(
    container: Container,
) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 2})

    placed = await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)

    assert placed.status is Status.PLACED
    assert placed.placed_at is not None
    assert placed.checkout_payment_id is None
    assert (await container.orders.get(owner, order.id)).status is Status.PLACED
    assert await stock(container, widget.id) == (3, 0, 2)
    assert [r["state"] for r in await reservation_rows(container.db, order.id)] == ["committed"]
    (payment,) = await container.orders.payments(owner, order.id)
    assert placed.totals is not None
    assert (payment.status, payment.amount) == (PaymentStatus.CAPTURED, placed.totals.total)
    assert payment.provider_reference.startswith("sbx_")
    events = [r["event_type"] for r in await outbox_rows(container.db, order.id)]
    assert events == ["OrderPlaced"]
    await assert_stock_balances(container, widget.id)


@pytest.mark.parametrize(
    ("card", "error", "reason"),
    [
        (DECLINED_CARD, PaymentDeclined, "card_declined"),
        (ERROR_CARD, ProviderError, "processing_error"),
    ],
)
async def test_a_refused_checkout_reopens_the_draft_and_releases_the_stock(
    container: Container, card: str, error: type[Exception], reason: str
) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 2})

    with pytest.raises(error):
        await container.orders.place(owner, order.id, card_number=card)

    reopened = await container.orders.get(owner, order.id)
    assert (reopened.status, reopened.checkout_payment_id) == (Status.DRAFT, None)
    assert await stock(container, widget.id) == (5, 0, 0)
    assert [r["state"] for r in await reservation_rows(container.db, order.id)] == ["released"]
    (failed,) = await container.orders.payments(owner, order.id)
    assert (failed.status, failed.failure_reason) == (PaymentStatus.FAILED, reason)

    # the draft is editable and payable again; the failed attempt does not block a new one
    await container.orders.add_line(owner, order.id, product_id=widget.id, quantity=1)
    placed = await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert placed.status is Status.PLACED
    assert await stock(container, widget.id) == (2, 0, 3)
    attempts = await container.orders.payments(owner, order.id)
    assert [p.status for p in attempts] == [PaymentStatus.FAILED, PaymentStatus.CAPTURED]
    await assert_stock_balances(container, widget.id)


async def test_an_order_for_more_than_is_available_is_refused_without_charging(
    container: Container,
) -> None:
    owner = await customer(container)
    plenty, scarce = await product(container, stock=10), await product(container, stock=1)
    order = await draft(container, owner, {plenty.id: 3, scarce.id: 2})

    with pytest.raises(OutOfStock):
        await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)

    assert (await container.orders.get(owner, order.id)).status is Status.DRAFT
    assert await stock(container, plenty.id) == (10, 0, 0)
    assert await stock(container, scarce.id) == (1, 0, 0)
    assert await reservation_rows(container.db, order.id) == []
    assert await container.orders.payments(owner, order.id) == []


async def test_a_deactivated_customer_cannot_place_an_order(container: Container) -> None:
    owner = await customer(container)
    widget = await product(container, stock=3)
    order = await draft(container, owner, {widget.id: 1})
    await container.customers.set_active(owner.user_id, active=False)

    with pytest.raises(CustomerInactive):
        await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert await stock(container, widget.id) == (3, 0, 0)
    assert await container.orders.payments(owner, order.id) == []


async def test_cancelling_a_paid_order_returns_the_stock_and_the_relay_refunds_it(
    container: Container,
) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 2})
    await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)

    cancelled = await container.orders.cancel(owner, order.id, reason="changed my mind")

    assert cancelled.status is Status.CANCELLED
    assert await stock(container, widget.id) == (5, 0, 0)
    assert [r["state"] for r in await reservation_rows(container.db, order.id)] == ["returned"]
    rows = await outbox_rows(container.db, order.id)
    assert [r["event_type"] for r in rows] == ["OrderPlaced", "OrderCancelled"]
    assert orjson.loads(rows[-1]["payload"])["refund_due"] is True
    (payment,) = await container.orders.payments(owner, order.id)
    assert payment.status is PaymentStatus.CAPTURED  # the refund is the relay's job

    async def refunded() -> bool:
        (current,) = await container.orders.payments(owner, order.id)
        return current.status is PaymentStatus.REFUNDED

    await relay_until(container.relay, refunded)
    refund_events = await outbox_rows(container.db, payment.id)
    assert [r["event_type"] for r in refund_events] == ["PaymentCaptured", "PaymentRefunded"]
    await assert_stock_balances(container, widget.id)


async def test_cancelling_a_draft_moves_no_stock_and_owes_no_refund(container: Container) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 2})

    await container.orders.cancel(owner, order.id)

    assert await stock(container, widget.id) == (5, 0, 0)
    (row,) = await outbox_rows(container.db, order.id)
    assert orjson.loads(row["payload"])["refund_due"] is False


async def test_an_order_in_checkout_cannot_be_changed_or_cancelled(container: Container) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 1})
    await container.orders.begin_checkout(owner, order.id, PaymentMeans(SUCCESS_CARD), None)

    with pytest.raises(CheckoutInProgress):
        await container.orders.add_line(owner, order.id, product_id=widget.id, quantity=1)
    with pytest.raises(CheckoutInProgress):
        await container.orders.cancel(owner, order.id)
    with pytest.raises(CheckoutInProgress):
        await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert await stock(container, widget.id) == (4, 1, 0)


async def test_the_database_refuses_a_second_live_payment_for_an_order(
    container: Container,
) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 1})
    placed = await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    assert placed.totals is not None
    now = datetime.now(UTC)
    second = Payment.open(
        id=new_id(),
        order_id=order.id,
        amount=placed.totals.total,
        provider="sandbox",
        card_last4="4242",
        now=now,
    )

    with pytest.raises(AlreadyPaid):
        async with container.db.transaction() as conn:
            await UnitOfWork(conn).repository(PaymentRepository).add(second)

    raw = {
        "id": second.id,
        "order_id": order.id,
        "amount": 1,
        "currency": "EUR",
        "status": "pending",
        "provider": "sandbox",
        "idempotency_key": second.idempotency_key,
        "card_last4": "4242",
        "provider_reference": "",
        "failure_reason": "",
        "created_at": now,
        "updated_at": now,
    }
    with pytest.raises(UniqueViolation) as refused:
        async with container.db.transaction() as conn:
            await conn.execute(_INSERT_PAYMENT, **raw)
    assert refused.value.mentions("order")
    # a failed attempt is not live: it may sit next to the captured one
    async with container.db.transaction() as conn:
        await conn.execute(_INSERT_PAYMENT, **{**raw, "status": "failed"})
    statuses = sorted(p.status for p in await container.orders.payments(owner, order.id))
    assert statuses == [PaymentStatus.CAPTURED, PaymentStatus.FAILED]


async def test_a_checkout_refused_by_a_live_payment_leaves_nothing_reserved_or_frozen(
    container: Container,
) -> None:
    # Never expected (a live payment belongs to a checkout or a placed order), but the index is
    # the last line: phase 1's payment row and order columns, written in one statement on
    # PostgreSQL, are refused together with the stock reserved before them.
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 2})
    now = datetime.now(UTC)
    leftover = Payment.open(
        id=new_id(),
        order_id=order.id,
        amount=Money(1, "EUR"),
        provider="sandbox",
        card_last4="4242",
        now=now,
    )
    async with container.db.transaction() as conn:
        await UnitOfWork(conn).repository(PaymentRepository).add(leftover)

    with pytest.raises(AlreadyPaid):
        await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)

    assert await stock(container, widget.id) == (5, 0, 0)
    assert await reservation_rows(container.db, order.id) == []
    stored = await container.orders.get(owner, order.id)
    assert (stored.status, stored.in_checkout, stored.version) == (
        Status.DRAFT,
        False,
        order.version,
    )
    assert [p.id for p in await container.orders.payments(owner, order.id)] == [leftover.id]


async def test_a_draft_repriced_at_checkout_is_placed_with_its_new_lines(
    container: Container,
) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5, price=1000)
    order = await draft(container, owner, {widget.id: 2})
    await container.catalog.update_product(
        widget.id, ProductChanges(price_amount=1500), expected_version=None
    )

    placed = await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)

    stored = await container.orders.get(owner, order.id)
    for seen in (placed, stored):
        assert seen.status is Status.PLACED
        assert seen.lines[widget.id].unit_price.amount == 1500
        assert seen.totals.subtotal.amount == 3000
    captured = await container.orders.payments(owner, order.id)
    assert [(p.status, p.amount) for p in captured] == [
        (PaymentStatus.CAPTURED, stored.totals.total)
    ]
    assert await stock(container, widget.id) == (3, 0, 2)
