"""Checkouts charged through Stripe (a local stand-in), wired by the composition root.

Whatever the network does to the charge, an order is paid exactly once: an answer that never
came leaves the payment pending until the reconciler finds the charge, a refusal Stripe did not
process releases the stock, a repeat never charges again, and a cancelled order is refunded once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from prometheus_client import generate_latest

from mercato.bootstrap import Container, build
from mercato.config import Settings
from mercato.kernel.errors import Conflict
from mercato.orders import Status
from mercato.orders.service import CheckoutReconciler
from mercato.payments import PaymentDeclined, ProviderError, StripeProvider
from mercato.payments import Status as PaymentStatus
from mercato.platform.security import Principal
from tests.conftest import TEST_SECRET, make_settings, running
from tests.integration.helpers import (
    assert_stock_balances,
    customer,
    draft,
    product,
    relay_until,
    stock,
)
from tests.stripe_standin import SECRET_KEY, RunningStandIn, StripeStandIn

pytestmark = pytest.mark.anyio

VISA = "4242424242424242"
DECLINED = "4000000000000002"


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[StripeStandIn]:
    with RunningStandIn() as standin:
        yield standin


@pytest.fixture
async def container(database_url: str, stripe_api: StripeStandIn) -> AsyncIterator[Container]:
    settings = make_settings(
        database_url,
        payment_provider="stripe",
        stripe_secret_key=SECRET_KEY,
        stripe_api_base=stripe_api.url,
        stripe_timeout_s=0.5,
        stripe_max_network_retries=0,
    )
    async with running(settings) as built:
        yield built


async def charges_of(
    standin: StripeStandIn, container: Container, owner: Principal, order_id: str
) -> int:
    """How many of the order's payment attempts took money at Stripe."""
    keys = {p.idempotency_key for p in await container.orders.payments(owner, order_id)}
    return len([i for i in standin.captured if i["metadata"]["mercato_idempotency_key"] in keys])


async def reconcile(container: Container) -> None:
    await CheckoutReconciler(container.orders, container.payments, grace_s=0).run_once()


async def test_the_composition_root_charges_through_stripe(
    container: Container, stripe_api: StripeStandIn
) -> None:
    assert isinstance(container.payments.provider, StripeProvider)
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 2})

    placed = await container.orders.place(owner, order.id, card_number=VISA)

    assert placed.status is Status.PLACED
    (payment,) = await container.orders.payments(owner, order.id)
    assert (payment.provider, payment.status, payment.card_last4) == ("stripe", "captured", "4242")
    (intent,) = [i for i in stripe_api.captured if i["id"] == payment.provider_reference]
    assert intent["amount"] == payment.amount.amount
    assert await charges_of(stripe_api, container, owner, order.id) == 1
    assert await stock(container, widget.id) == (3, 0, 2)


async def test_a_declined_card_releases_the_stock_and_names_the_decline(
    container: Container,
) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 2})

    with pytest.raises(PaymentDeclined) as declined:
        await container.orders.place(owner, order.id, card_number=DECLINED)

    assert declined.value.data["reason"] == "generic_decline"
    assert (await container.orders.get(owner, order.id)).status is Status.DRAFT
    assert await stock(container, widget.id) == (5, 0, 0)


@pytest.mark.parametrize("trouble", ["drop", ("slow", 1.0), "server_error"])
async def test_a_charge_whose_answer_never_came_is_settled_by_the_reconciler_exactly_once(
    container: Container, stripe_api: StripeStandIn, trouble: object
) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 2})
    stripe_api.next_charge(trouble)

    with pytest.raises(ProviderError):
        await container.orders.place(owner, order.id, card_number=VISA)

    (payment,) = await container.orders.payments(owner, order.id)
    assert payment.status is PaymentStatus.PENDING  # unknown: neither failed nor captured
    assert await stock(container, widget.id) == (3, 2, 0)  # still held for the charge
    with pytest.raises(Conflict, match="being paid for"):  # the customer's impatient retry
        await container.orders.place(owner, order.id, card_number=VISA)

    await reconcile(container)

    charged = 0 if trouble == "server_error" else 1  # a 500 here means nothing was done
    assert await charges_of(stripe_api, container, owner, order.id) == charged
    settled = await container.orders.get(owner, order.id)
    (payment,) = await container.orders.payments(owner, order.id)
    if charged:
        assert (settled.status, payment.status) == (Status.PLACED, PaymentStatus.CAPTURED)
        assert await stock(container, widget.id) == (3, 0, 2)
    else:
        assert (settled.status, payment.status) == (Status.DRAFT, PaymentStatus.FAILED)
        assert await stock(container, widget.id) == (5, 0, 0)
    await assert_stock_balances(container, widget.id)


async def test_a_payment_method_checkout_whose_answer_was_lost_gets_its_last_four_digits_later(
    container: Container, stripe_api: StripeStandIn
) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 1})
    method = stripe_api.tokenise("3220")
    stripe_api.next_charge("drop")  # Stripe charges the card; mercato never hears back

    with pytest.raises(ProviderError):
        await container.orders.place(owner, order.id, payment_method=method)
    (pending,) = await container.orders.payments(owner, order.id)
    assert (pending.status, pending.card_last4) == (PaymentStatus.PENDING, "")

    await reconcile(container)

    (payment,) = await container.orders.payments(owner, order.id)
    assert (payment.status, payment.card_last4) == (PaymentStatus.CAPTURED, "3220")
    assert (await container.orders.get(owner, order.id)).status is Status.PLACED
    assert await charges_of(stripe_api, container, owner, order.id) == 1
    assert await stock(container, widget.id) == (4, 0, 1)


async def test_a_rate_limited_checkout_charges_nothing_and_can_be_placed_again(
    container: Container, stripe_api: StripeStandIn
) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 2})
    stripe_api.next_charge("rate_limit")

    with pytest.raises(ProviderError) as refused:
        await container.orders.place(owner, order.id, card_number=VISA)
    assert refused.value.data["reason"] == "rate_limited"
    assert await stock(container, widget.id) == (5, 0, 0)

    placed = await container.orders.place(owner, order.id, card_number=VISA)

    assert placed.status is Status.PLACED
    assert await charges_of(stripe_api, container, owner, order.id) == 1
    statuses = [p.status for p in await container.orders.payments(owner, order.id)]
    assert statuses == [PaymentStatus.FAILED, PaymentStatus.CAPTURED]


async def test_cancelling_an_order_paid_through_stripe_refunds_it_once(
    container: Container, stripe_api: StripeStandIn
) -> None:
    owner = await customer(container)
    widget = await product(container, stock=5)
    order = await draft(container, owner, {widget.id: 1})
    await container.orders.place(owner, order.id, card_number=VISA)
    (payment,) = await container.orders.payments(owner, order.id)

    await container.orders.cancel(owner, order.id, reason="changed my mind")

    async def refunded() -> bool:
        (current,) = await container.orders.payments(owner, order.id)
        return current.status is PaymentStatus.REFUNDED

    await relay_until(container.relay, refunded)
    await container.payments.refund_order(order.id)  # a redelivered event changes nothing
    refunds = [
        r for r in stripe_api.refunds.values() if r["payment_intent"] == payment.provider_reference
    ]
    assert [r["amount"] for r in refunds] == [payment.amount.amount]


def _production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "database_url": "postgresql://mercato@db.internal:5432/mercato",
        "token_secret": TEST_SECRET,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


async def test_production_on_the_sandbox_by_override_warns_and_says_so_in_its_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    drill = build(_production(allow_sandbox_payments_in_production=True))
    real = build(_production(payment_provider="stripe", stripe_secret_key="sk_live_" + "x" * 30))
    try:
        assert "PRODUCTION IS TAKING TEST PAYMENTS (sandbox provider)" in caplog.text
        assert b"mercato_sandbox_payments_override 1.0" in generate_latest(drill.metrics.registry)
        assert b"mercato_sandbox_payments_override 0.0" in generate_latest(real.metrics.registry)
        assert isinstance(real.payments.provider, StripeProvider)
    finally:
        for built in (drill, real):
            await built.stop()
