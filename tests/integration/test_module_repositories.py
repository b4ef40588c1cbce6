"""The catalog's, customers' and payments' repositories guard every save with the token they
loaded (version, or status) on a real database: a save that lost a race writes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.catalog.domain import ProductConflict
from mercato.catalog.store import ProductRepository, products
from mercato.customers.domain import CustomerConflict
from mercato.customers.store import CustomerRepository, customers
from mercato.kernel.clock import utcnow
from mercato.kernel.ids import new_id
from mercato.kernel.money import Money
from mercato.payments import ChargeResult, Outcome, Payment, Status
from mercato.payments.store import PaymentRepository, payments
from mercato.platform.db import sql
from mercato.platform.uow import UnitOfWork
from tests.integration.helpers import customer, outbox_rows, product

pytestmark = pytest.mark.anyio

# what another transaction's committed change leaves behind, applied inside the test's own
_BUMP_PRODUCT = sql(
    sa.update(products)
    .where(products.c.id == sa.bindparam("id"))
    .values(name="Theirs", version=products.c.version + 1)
)
_BUMP_CUSTOMER = sql(
    sa.update(customers)
    .where(customers.c.id == sa.bindparam("id"))
    .values(active=False, version=customers.c.version + 1)
)
_FAIL_PAYMENT = sql(
    sa.update(payments)
    .where(payments.c.id == sa.bindparam("id"))
    .values(status=Status.FAILED.value, failure_reason="reconciled")
)


async def test_a_product_save_after_the_row_moved_is_a_conflict_naming_the_new_version(
    container: Container,
) -> None:
    item = await product(container, stock=3)

    async def edit(uow: UnitOfWork) -> None:
        repository = uow.repository(ProductRepository)
        mine = await repository.get(item.id)
        await uow.conn.execute(_BUMP_PRODUCT, id=item.id)
        mine.update(now=utcnow(), name="Mine")
        await repository.save(mine)

    with pytest.raises(ProductConflict) as refused:
        await container.transact(edit)
    assert refused.value.data["current_version"] == 2
    shown = await container.catalog.product_view(item.id, staff=True)
    assert (shown["name"], shown["version"]) == ("Widget", 1)  # the whole unit rolled back
    assert [r["event_type"] for r in await outbox_rows(container.db, item.id)] == [
        "ProductCreated",
        "StockAdjusted",
    ]


async def test_a_customer_save_after_the_row_moved_is_a_conflict(container: Container) -> None:
    owner = await customer(container)

    async def deactivate(uow: UnitOfWork) -> None:
        repository = uow.repository(CustomerRepository)
        mine = await repository.get(owner.user_id)
        await uow.conn.execute(_BUMP_CUSTOMER, id=owner.user_id)
        mine.deactivate()
        await repository.save(mine)

    with pytest.raises(CustomerConflict):
        await container.transact(deactivate)
    assert (await container.customers.get(owner.user_id)).active is True
    assert [r["event_type"] for r in await outbox_rows(container.db, owner.user_id)] == [
        "CustomerRegistered"
    ]


async def test_settling_a_stale_copy_of_a_payment_writes_nothing_and_publishes_nothing(
    container: Container,
) -> None:
    opened = Payment.open(
        id=new_id(),
        order_id=new_id(),
        amount=Money(1000, "EUR"),
        provider="sandbox",
        card_last4="4242",
        now=utcnow(),
    )
    await container.transact(lambda uow: uow.repository(PaymentRepository).add(opened))
    await container.transact(lambda uow: uow.conn.execute(_FAIL_PAYMENT, id=opened.id))
    captured = ChargeResult(Outcome.CAPTURED, reference="ch_late")

    async def settle_from_the_copy(uow: UnitOfWork) -> Payment:
        return await container.payments.settle_opened(uow, opened, captured)

    settled = await container.transact(settle_from_the_copy)
    assert (settled.status, settled.failure_reason) == (Status.FAILED, "reconciled")
    [stored] = await container.payments.list_for_order(opened.order_id)
    assert (stored.status, stored.provider_reference) == (Status.FAILED, "")
    assert await outbox_rows(container.db, opened.id) == []
    assert opened.status is Status.PENDING  # the caller's copy is left as it was
