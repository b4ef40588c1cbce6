"""Checkouts whose request died between charging and settling are finished by the workers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.catalog.store import reservations
from mercato.config import Settings
from mercato.kernel.money import Money
from mercato.orders import Order, Status
from mercato.orders.domain import CheckoutAbandoned
from mercato.orders.service import CheckoutReconciler, ReservationSweeper
from mercato.payments import (
    DECLINED_CARD,
    SUCCESS_CARD,
    ChargeRequest,
    ChargeResult,
    Outcome,
    PaymentMeans,
    SandboxProvider,
)
from mercato.payments import Status as PaymentStatus
from mercato.platform.db import sql
from mercato.platform.security import Principal
from tests.conftest import running
from tests.integration.helpers import (
    assert_stock_balances,
    customer,
    draft,
    outbox_rows,
    product,
    reservation_rows,
    stock,
)

pytestmark = pytest.mark.anyio

_EXPIRE_HOLDS = sql(
    sa.update(reservations)
    .where(reservations.c.order_id == sa.bindparam("order_id"))
    .values(expires_at=sa.bindparam("at"))
)


async def crashed_checkout(
    container: Container, *, charge_with: str | None
) -> tuple[Principal, Order, str, str]:
    """A checkout that began (stock held, payment pending) and whose request then died.

    ``charge_with`` is the card the provider was charged with before the crash (None: the
    process died before calling the provider). Returns owner, order, product id, payment id.
    """
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 2})
    checkout = await container.orders.begin_checkout(
        owner, order.id, PaymentMeans(SUCCESS_CARD), None
    )
    if charge_with is not None:
        await container.payments.charge(checkout.payment, PaymentMeans(charge_with))
    assert await stock(container, widget.id) == (3, 2, 0)
    assert (await container.orders.get(owner, order.id)).checkout_payment_id == checkout.payment.id
    return owner, order, widget.id, checkout.payment.id


async def reconcile(container: Container, owner: Principal, order_id: str) -> None:
    reconciler = CheckoutReconciler(container.orders, container.payments, grace_s=0)
    for _ in range(20):
        payments = await container.orders.payments(owner, order_id)
        if all(p.status is not PaymentStatus.PENDING for p in payments):
            return
        await reconciler.run_once()
    raise AssertionError("the reconciler did not settle the payment")


async def test_a_charge_captured_before_the_crash_places_the_order(
    container: Container,
) -> None:
    owner, order, widget_id, payment_id = await crashed_checkout(
        container, charge_with=SUCCESS_CARD
    )

    await reconcile(container, owner, order.id)

    settled = await container.orders.get(owner, order.id)
    assert (settled.status, settled.checkout_payment_id) == (Status.PLACED, None)
    assert await stock(container, widget_id) == (3, 0, 2)
    (payment,) = await container.orders.payments(owner, order.id)
    assert (payment.id, payment.status) == (payment_id, PaymentStatus.CAPTURED)
    assert [r["state"] for r in await reservation_rows(container.db, order.id)] == ["committed"]
    assert [r["event_type"] for r in await outbox_rows(container.db, order.id)] == ["OrderPlaced"]
    await assert_stock_balances(container, widget_id)


@pytest.mark.parametrize(
    ("charged_with", "reason"), [(None, "abandoned"), (DECLINED_CARD, "card_declined")]
)
async def test_a_checkout_the_provider_did_not_capture_fails_and_releases_the_stock(
    container: Container, charged_with: str | None, reason: str
) -> None:
    owner, order, widget_id, payment_id = await crashed_checkout(
        container, charge_with=charged_with
    )

    await reconcile(container, owner, order.id)

    settled = await container.orders.get(owner, order.id)
    assert (settled.status, settled.checkout_payment_id) == (Status.DRAFT, None)
    assert await stock(container, widget_id) == (5, 0, 0)
    (payment,) = await container.orders.payments(owner, order.id)
    assert (payment.id, payment.status, payment.failure_reason) == (
        payment_id,
        PaymentStatus.FAILED,
        reason,
    )
    assert [r["state"] for r in await reservation_rows(container.db, order.id)] == ["released"]
    await assert_stock_balances(container, widget_id)


async def test_the_reconciler_leaves_checkouts_younger_than_its_grace_alone(
    container: Container,
) -> None:
    owner, order, widget_id, _ = await crashed_checkout(container, charge_with=SUCCESS_CARD)
    patient = CheckoutReconciler(container.orders, container.payments, grace_s=3600)

    await patient.run_once()

    assert (await container.orders.get(owner, order.id)).checkout_payment_id is not None
    assert await stock(container, widget_id) == (3, 2, 0)


async def test_a_late_answer_after_reconciliation_changes_nothing(container: Container) -> None:
    owner, order, widget_id, payment_id = await crashed_checkout(container, charge_with=None)
    await reconcile(container, owner, order.id)

    # the original request wakes up with a capture it never recorded
    late = ChargeResult(Outcome.CAPTURED, reference="sbx_late")
    after = await container.orders.settle_checkout(order.id, payment_id, late)

    assert (after.status, after.checkout_payment_id) == (Status.DRAFT, None)
    assert await stock(container, widget_id) == (5, 0, 0)
    (payment,) = await container.orders.payments(owner, order.id)
    assert payment.status is PaymentStatus.FAILED


async def test_the_sweeper_settles_a_checkout_whose_hold_expired(container: Container) -> None:
    owner, order, widget_id, payment_id = await crashed_checkout(container, charge_with=None)
    async with container.db.transaction() as conn:
        await conn.execute(
            _EXPIRE_HOLDS, order_id=order.id, at=datetime.now(UTC) - timedelta(seconds=1)
        )
    sweeper = ReservationSweeper(container.orders, container.catalog, container.payments)

    for _ in range(10):
        if not await sweeper.run_once():
            break

    settled = await container.orders.get(owner, order.id)
    assert (settled.status, settled.checkout_payment_id) == (Status.DRAFT, None)
    assert await stock(container, widget_id) == (5, 0, 0)
    (payment,) = await container.orders.payments(owner, order.id)
    assert (payment.id, payment.status) == (payment_id, PaymentStatus.FAILED)
    expired = [
        r["event_type"]
        for r in await outbox_rows(container.db, widget_id)
        if r["event_type"] == "ReservationExpired"
    ]
    assert expired == ["ReservationExpired"]


class _Unsure(SandboxProvider):
    """The sandbox, unable to say what became of some charges (a provider outage for them)."""

    def __init__(self) -> None:
        super().__init__()
        self.unsure: set[str] = set()

    async def lookup(self, *, idempotency_key: str) -> ChargeResult | None:
        if idempotency_key in self.unsure:
            raise ConnectionError("the provider did not answer")
        return await super().lookup(idempotency_key=idempotency_key)


async def test_a_lookup_that_fails_leaves_that_checkout_and_settles_the_others(
    settings: Settings,
) -> None:
    provider = _Unsure()
    async with running(settings, provider=provider) as container:
        owner, stuck, _, stuck_payment = await crashed_checkout(container, charge_with=SUCCESS_CARD)
        _, paid, _, _ = await crashed_checkout(container, charge_with=SUCCESS_CARD)
        pending = await container.orders.payments(owner, stuck.id)
        provider.unsure.add(pending[0].idempotency_key)
        reconciler = CheckoutReconciler(container.orders, container.payments, grace_s=0)

        while await reconciler.run_once():
            pass

        assert (await container.orders.get_unchecked(paid.id)).status is Status.PLACED  # type: ignore[union-attr]
        still = await container.orders.payments(owner, stuck.id)
        assert [(p.id, p.status) for p in still] == [(stuck_payment, PaymentStatus.PENDING)]


class _Slow(SandboxProvider):
    """The sandbox, so slow to answer a charge that the reconciler gives the checkout up first."""

    def __init__(self) -> None:
        super().__init__()
        self.reconcile: Callable[[], Awaitable[None]] | None = None
        self.refunds: list[str] = []

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        if self.reconcile is not None:
            await self.reconcile()  # gives the checkout up before the charge exists
        return await super().charge(request)

    async def refund(self, *, idempotency_key: str, reference: str, amount: Money) -> ChargeResult:
        self.refunds.append(reference)
        return await super().refund(
            idempotency_key=idempotency_key, reference=reference, amount=amount
        )


async def test_a_charge_captured_after_its_checkout_was_given_up_is_refunded(
    settings: Settings,
) -> None:
    provider = _Slow()
    async with running(settings, provider=provider) as container:
        reconciler = CheckoutReconciler(container.orders, container.payments, grace_s=0)
        owner = await customer(container)
        widget = await product(container, stock=5)
        order = await draft(container, owner, {widget.id: 2})

        async def give_up() -> None:  # what the reconciler does when the provider knows nothing
            (pending,) = await container.orders.payments(owner, order.id)
            assert await provider.lookup(idempotency_key=pending.idempotency_key) is None
            await reconciler.settle(pending, ChargeResult(Outcome.ERROR, reason="abandoned"))

        provider.reconcile = give_up

        with pytest.raises(CheckoutAbandoned):
            await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)

        (payment,) = await container.orders.payments(owner, order.id)
        assert payment.status is PaymentStatus.FAILED
        assert provider.refunds == [provider._seen[payment.idempotency_key].reference]
        assert (await container.orders.get(owner, order.id)).status is Status.DRAFT
        assert await stock(container, widget.id) == (5, 0, 0)
        provider.reconcile = None
        placed = await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
        assert placed.status is Status.PLACED
