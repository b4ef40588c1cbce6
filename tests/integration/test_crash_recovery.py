"""A checkout whose process died half-way is settled by the background workers.

The process is "killed" by running only the first step of placing an order (reserve stock and
record a pending payment, committed) and never the rest; the workers must then leave stock,
payment and order consistent, exactly as a live request would have.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.catalog.store import reservations
from mercato.customers import Role
from mercato.kernel.values import Address
from mercato.orders import NewLine, Order
from mercato.orders.service import CheckoutReconciler, ReservationSweeper
from mercato.payments import (
    SUCCESS_CARD,
    ChargeResult,
    Outcome,
    Payment,
    PaymentMeans,
)
from mercato.platform.db import sql
from mercato.platform.outbox import outbox
from mercato.platform.security import Principal
from mercato.platform.security import Role as TokenRole
from tests.conftest import unique
from tests.integration.helpers import stock as stock_of

pytestmark = pytest.mark.anyio

ADDRESS = Address(street="Hauptstrasse 1", city="Berlin", country="DE")


async def _died_after_reserving(
    container: Container, *, stock: int, qty: int
) -> tuple[Order, Payment, str]:
    staff = await container.customers.register(
        email=f"{unique('s')}@example.com", password="staff password", name="S", role=Role.STAFF
    )
    product = await container.catalog.create_product(
        actor_id=staff.id,
        sku=unique("CR").upper(),
        name="Crash",
        description="",
        price_amount=1500,
        currency="EUR",
        weight_grams=100,
        initial_stock=stock,
    )
    customer = await container.customers.register(
        email=f"{unique('c')}@example.com", password="customer password", name="C"
    )
    principal = Principal(customer.id, TokenRole.CUSTOMER)
    order = await container.orders.create(
        principal, lines=[NewLine(product.id, qty)], shipping_address=ADDRESS
    )
    # The first step of place(), then nothing: the process died before charging or settling.
    checkout = await container.orders.begin_checkout(
        principal, order.id, PaymentMeans(SUCCESS_CARD), None
    )
    return checkout.order, checkout.payment, product.id


async def _expire_reservations(container: Container, order_id: str) -> None:
    async with container.db.transaction() as conn:
        await conn.execute(
            sql(
                sa.update(reservations)
                .where(reservations.c.order_id == sa.bindparam("o"))
                .values(expires_at=sa.bindparam("at"))
            ),
            o=order_id,
            at=datetime(2000, 1, 1, tzinfo=UTC),
        )


async def test_the_sweeper_returns_the_stock_of_a_checkout_that_died(container: Container) -> None:
    order, payment, product_id = await _died_after_reserving(container, stock=5, qty=3)
    assert await stock_of(container, product_id) == (2, 3, 0)

    sweeper = ReservationSweeper(container.orders, container.catalog, container.payments)
    assert await sweeper.run_once() == 0  # nothing has expired yet
    await _expire_reservations(container, order.id)
    assert await sweeper.run_once() == 1

    assert await stock_of(container, product_id) == (5, 0, 0)
    settled = await container.orders.get_unchecked(order.id)
    assert settled is not None
    assert settled.status.value == "draft"
    assert not settled.in_checkout
    [failed] = await container.payments.list_for_order(order.id)
    assert (failed.id, failed.status.value, failed.failure_reason) == (
        payment.id,
        "failed",
        "reservation_expired",
    )
    async with container.db.connection() as conn:
        recorded = await conn.fetch(
            sql(
                sa.select(outbox.c.event_type, outbox.c.payload).where(
                    outbox.c.aggregate_id == sa.bindparam("p"),
                    outbox.c.event_type == "ReservationExpired",
                )
            ),
            p=product_id,
        )
    assert len(recorded) == 1
    assert '"quantity":3' in recorded[0]["payload"]
    assert await sweeper.run_once() == 0  # and it did so once


async def test_a_charge_that_went_through_places_the_order_when_reconciled(
    container: Container,
) -> None:
    order, payment, product_id = await _died_after_reserving(container, stock=4, qty=2)
    # The provider captured the charge, but the process died before recording the answer.
    await container.payments.charge(payment, PaymentMeans(SUCCESS_CARD))
    reconciler = CheckoutReconciler(container.orders, container.payments, grace_s=0)
    assert await reconciler.run_once() >= 1

    placed = await container.orders.get_unchecked(order.id)
    assert placed is not None
    assert placed.status.value == "placed"
    assert await stock_of(container, product_id) == (2, 0, 2)
    assert [p.status.value for p in await container.payments.list_for_order(order.id)] == [
        "captured"
    ]


async def test_a_charge_the_provider_never_saw_is_failed_and_its_stock_released(
    container: Container,
) -> None:
    order, _, product_id = await _died_after_reserving(container, stock=4, qty=4)
    reconciler = CheckoutReconciler(container.orders, container.payments, grace_s=0)
    assert await reconciler.run_once() >= 1

    draft = await container.orders.get_unchecked(order.id)
    assert draft is not None
    assert (draft.status.value, draft.in_checkout) == ("draft", False)
    assert await stock_of(container, product_id) == (4, 0, 0)
    assert [p.status.value for p in await container.payments.list_for_order(order.id)] == ["failed"]


async def test_a_late_answer_for_a_checkout_settled_meanwhile_changes_nothing(
    container: Container,
) -> None:
    order, payment, product_id = await _died_after_reserving(container, stock=3, qty=1)
    reconciler = CheckoutReconciler(container.orders, container.payments, grace_s=0)
    assert await reconciler.run_once() >= 1  # the provider never saw it: failed, released
    captured = ChargeResult(Outcome.CAPTURED, reference="late")

    after = await container.orders.settle_checkout(order.id, payment.id, captured, payment=payment)

    assert (after.status.value, after.in_checkout) == ("draft", False)
    assert await stock_of(container, product_id) == (3, 0, 0)
    assert [p.status.value for p in await container.payments.list_for_order(order.id)] == ["failed"]
