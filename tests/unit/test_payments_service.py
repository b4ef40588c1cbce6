"""The payments' use cases against the fake unit of work and a scripted provider."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from mercato.kernel.money import Money
from mercato.payments import (
    DECLINED_CARD,
    SUCCESS_CARD,
    AlreadyPaid,
    ChargeResult,
    Outcome,
    Payment,
    PaymentMeans,
    PaymentOpening,
    PaymentsService,
    Status,
)
from mercato.payments.domain import PaymentNotFound
from mercato.payments.events import PaymentCaptured, PaymentFailed, PaymentRefunded
from mercato.platform.outbox import OutboxEvent
from mercato.platform.uow import UnitOfWork
from tests.fakes import FakeTransactor
from tests.fakes.payments import ScriptedProvider

pytestmark = pytest.mark.anyio

TOTAL = Money(2599, "EUR")
CAPTURED = ChargeResult(Outcome.CAPTURED, reference="ch_1", card_last4="4242")
DECLINED = ChargeResult(Outcome.DECLINED, reason="card_declined")
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.fixture
def transact() -> FakeTransactor:
    return FakeTransactor()


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def payments(transact: FakeTransactor, provider: ScriptedProvider) -> PaymentsService:
    return PaymentsService(transact, provider=provider)


async def open_payment(
    payments: PaymentsService,
    transact: FakeTransactor,
    order_id: str = "order-1",
    *,
    card_number: str | None = SUCCESS_CARD,
) -> Payment:
    async def work(uow: UnitOfWork) -> Payment:
        opening = PaymentOpening(f"pay-{order_id}", order_id, TOTAL, PaymentMeans(card_number))
        return await payments.open(uow, opening)

    return await transact(work)


async def settle(
    payments: PaymentsService,
    transact: FakeTransactor,
    payment: Payment,
    result: ChargeResult,
    *,
    known: bool = True,
) -> Payment:
    async def work(uow: UnitOfWork) -> Payment:
        if known:
            return await payments.settle_opened(uow, payment, result)
        return await payments.settle(uow, payment.id, result)

    return await transact(work)


def status_of(transact: FakeTransactor, payment: Payment) -> str:
    status: str = transact.tables["payments"][payment.id]["status"]
    return status


async def test_a_payment_opens_pending_with_a_key_of_its_own_before_any_charge(
    payments: PaymentsService, transact: FakeTransactor, provider: ScriptedProvider
) -> None:
    by_card = await open_payment(payments, transact, "o1")
    by_method = await open_payment(payments, transact, "o2", card_number=None)
    assert (by_card.status, by_card.card_last4, by_card.provider) == (
        Status.PENDING,
        "4242",
        "sandbox",
    )
    assert by_card.idempotency_key == "mercato-charge-pay-o1"
    assert by_method.card_last4 == ""
    assert status_of(transact, by_card) == "pending"
    assert (provider.calls, transact.outbox) == ([], [])


async def test_an_order_with_a_live_payment_cannot_open_another(
    payments: PaymentsService, transact: FakeTransactor
) -> None:
    first = await open_payment(payments, transact)
    with pytest.raises(AlreadyPaid):
        await open_payment(payments, transact)  # same order, same live payment
    await settle(payments, transact, first, DECLINED)

    async def retry(uow: UnitOfWork) -> Payment:
        return await payments.open(uow, PaymentOpening("pay-2", "order-1", TOTAL, PaymentMeans()))

    assert (await transact(retry)).status is Status.PENDING  # a failed one is no obstacle


async def test_charging_asks_the_provider_with_the_payments_key_and_an_outage_is_unknown(
    payments: PaymentsService, transact: FakeTransactor, provider: ScriptedProvider
) -> None:
    payment = await open_payment(payments, transact)
    provider.charges = [ConnectionError("reset by peer"), DECLINED]
    assert await payments.charge(payment, PaymentMeans(SUCCESS_CARD)) is None
    assert await payments.charge(payment, PaymentMeans(SUCCESS_CARD)) == DECLINED
    assert provider.calls == [("charge", payment.idempotency_key)] * 2


async def test_settling_a_capture_records_it_once_and_publishes_it(
    payments: PaymentsService, transact: FakeTransactor
) -> None:
    payment = await open_payment(payments, transact, card_number=None)
    settled = await settle(payments, transact, payment, CAPTURED)
    assert (settled.status, settled.provider_reference, settled.card_last4) == (
        Status.CAPTURED,
        "ch_1",
        "4242",
    )
    assert payment.status is Status.PENDING  # the caller's copy is left as it was
    again = await settle(payments, transact, payment, DECLINED)  # a late, different answer
    assert again.status is Status.CAPTURED
    assert status_of(transact, payment) == "captured"
    assert [type(e) for e in transact.outbox] == [PaymentCaptured]


async def test_settling_without_the_callers_copy_reads_the_payment_and_a_decline_fails_it(
    payments: PaymentsService, transact: FakeTransactor
) -> None:
    payment = await open_payment(payments, transact)
    failed = await settle(payments, transact, payment, DECLINED, known=False)
    assert (failed.status, failed.failure_reason) == (Status.FAILED, "card_declined")
    assert transact.events(PaymentFailed) == [
        PaymentFailed(
            payment_id=payment.id, order_id="order-1", reason="card_declined", outcome="declined"
        )
    ]
    with pytest.raises(PaymentNotFound):
        await transact(lambda uow: payments.settle(uow, "pay-unknown", CAPTURED))


async def test_settling_a_copy_another_process_already_settled_keeps_the_first_answer(
    payments: PaymentsService, transact: FakeTransactor
) -> None:
    payment = await open_payment(payments, transact)
    await settle(payments, transact, payment, DECLINED, known=False)  # the reconciler, first
    late = await settle(payments, transact, payment, CAPTURED)  # the request, with its copy
    assert late.status is Status.FAILED
    assert status_of(transact, payment) == "failed"
    assert transact.events(PaymentCaptured) == []


async def test_refunding_a_cancelled_paid_order_happens_once(
    payments: PaymentsService, transact: FakeTransactor, provider: ScriptedProvider
) -> None:
    payment = await open_payment(payments, transact)
    await settle(payments, transact, payment, CAPTURED)
    cancelled = OutboxEvent(1, "order", "order-1", "OrderCancelled", {"refund_due": True}, NOW)
    await payments.on_order_cancelled(cancelled)
    await payments.on_order_cancelled(cancelled)  # a redelivered event changes nothing
    assert status_of(transact, payment) == "refunded"
    assert provider.calls.count(("refund", payment.refund_key)) == 1
    assert transact.events(PaymentRefunded) == [
        PaymentRefunded(payment_id=payment.id, order_id="order-1", amount=2599, currency="EUR")
    ]


async def test_no_refund_when_none_is_due_or_nothing_was_captured(
    payments: PaymentsService, transact: FakeTransactor, provider: ScriptedProvider
) -> None:
    payment = await open_payment(payments, transact)
    await payments.on_order_cancelled(OutboxEvent(1, "order", "order-1", "OrderCancelled", {}, NOW))
    assert await payments.refund_order("order-1") is None  # still pending: nothing to give back
    assert status_of(transact, payment) == "pending"
    assert provider.calls == []


async def test_a_refund_the_provider_refuses_leaves_the_payment_captured(
    payments: PaymentsService, transact: FakeTransactor, provider: ScriptedProvider
) -> None:
    payment = await open_payment(payments, transact)
    await settle(payments, transact, payment, CAPTURED)
    provider.refunds = [ChargeResult(Outcome.ERROR, reason="processing_error")]
    with pytest.raises(RuntimeError, match="processing_error"):
        await payments.refund_order("order-1")
    assert status_of(transact, payment) == "captured"
    assert (await payments.refund_order("order-1")) is not None  # the next delivery succeeds
    assert status_of(transact, payment) == "refunded"


@pytest.mark.parametrize(
    ("answer", "level"),
    [
        (ChargeResult(Outcome.CAPTURED, reference="re_1"), logging.WARNING),
        (ChargeResult(Outcome.ERROR, reason="processing_error"), logging.ERROR),
        (ConnectionError("reset by peer"), logging.ERROR),
    ],
)
async def test_a_late_capture_is_refunded_at_once_or_left_to_a_person_loudly(
    payments: PaymentsService,
    transact: FakeTransactor,
    provider: ScriptedProvider,
    caplog: pytest.LogCaptureFixture,
    answer: ChargeResult | Exception,
    level: int,
) -> None:
    payment = await open_payment(payments, transact)
    failed = await settle(payments, transact, payment, DECLINED)
    provider.refunds = [answer]
    with caplog.at_level(logging.WARNING, logger="mercato.payments"):
        await payments.refund_late_capture(failed, CAPTURED)
    assert provider.calls == [("refund", payment.refund_key)]
    assert [r.levelno for r in caplog.records] == [level]
    assert payment.id in caplog.records[0].getMessage()
    assert status_of(transact, payment) == "failed"


async def test_stale_pending_payments_and_an_orders_attempts_are_found(
    payments: PaymentsService, transact: FakeTransactor, provider: ScriptedProvider
) -> None:
    first = await open_payment(payments, transact, "o1")
    await settle(payments, transact, first, DECLINED)
    retry = await open_payment(payments, transact, "o2")
    assert [p.id for p in await payments.list_for_order("o1")] == [first.id]
    assert await payments.stale_pending(older_than=timedelta(minutes=5), limit=10) == []
    stale = await payments.stale_pending(older_than=timedelta(minutes=-1), limit=10)
    assert [p.id for p in stale] == [retry.id]
    assert await payments.lookup(retry) is None  # the provider never saw a charge
    charged = await payments.charge(retry, PaymentMeans(DECLINED_CARD))
    assert await payments.lookup(retry) == charged
