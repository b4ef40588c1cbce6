"""The catalog service: products, the stock audit trail, and reservations that never oversell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from mercato.bootstrap import Container
from mercato.catalog import OutOfStock, ProductInactive, ProductNotFound
from mercato.catalog.domain import SkuTaken
from mercato.catalog.service import ProductChanges
from mercato.kernel.ids import new_id
from mercato.platform.uow import UnitOfWork
from tests.integration.helpers import (
    STAFF,
    assert_stock_balances,
    outbox_rows,
    product,
    reservation_rows,
    stock,
)

pytestmark = pytest.mark.anyio


async def reserve(container: Container, order_id: str, quantities: dict[str, int]) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=15)

    async def work(uow: UnitOfWork) -> None:
        await container.catalog.reserve(uow, order_id, quantities, expires_at=expires)

    await container.transact(work)


async def move(container: Container, order_id: str, how: str, *, expired: bool = False) -> None:
    async def work(uow: UnitOfWork) -> None:
        if how == "commit":
            await container.catalog.commit_reservation(uow, order_id)
        elif how == "release":
            await container.catalog.release_reservation(uow, order_id, expired=expired)
        else:
            await container.catalog.return_stock(uow, order_id)

    await container.transact(work)


async def test_creating_a_product_records_its_opening_stock_as_the_first_adjustment(
    container: Container,
) -> None:
    created = await product(container, stock=12, price=1999)

    stored = await container.catalog.product_view(created.id, staff=False)
    assert (stored["sku"], stored["price"]) == (created.sku, {"amount": 1999, "currency": "EUR"})
    assert await stock(container, created.id) == (12, 0, 0)
    trail = await container.catalog.adjustments(created.id, after=None, limit=10)
    assert [(a.delta, a.reason, a.actor_id, a.available_after) for a in trail.items] == [
        (12, "initial stock", STAFF.user_id, 12)
    ]
    assert trail.items[0].created_at.tzinfo is not None
    rows = await outbox_rows(container.db, created.id)
    assert [r["event_type"] for r in rows] == ["ProductCreated", "StockAdjusted"]


async def test_a_product_without_opening_stock_has_an_empty_trail(container: Container) -> None:
    created = await product(container, stock=0)
    assert await stock(container, created.id) == (0, 0, 0)
    assert (await container.catalog.adjustments(created.id, after=None, limit=10)).items == []


async def test_a_sku_is_unique(container: Container) -> None:
    created = await product(container, stock=1)
    with pytest.raises(SkuTaken):
        await container.catalog.create_product(
            actor_id=STAFF.user_id,
            sku=created.sku.lower(),
            name="Copy",
            description="",
            price_amount=1,
            currency="EUR",
            weight_grams=1,
            initial_stock=5,
        )


async def test_stock_adjustments_cannot_take_available_below_zero(container: Container) -> None:
    created = await product(container, stock=3)
    delivered = await container.catalog.adjust_stock(
        created.id, delta=4, reason="delivery", actor_id="s"
    )
    assert delivered.available == 7
    emptied = await container.catalog.adjust_stock(
        created.id, delta=-7, reason="stocktake", actor_id="s"
    )
    assert emptied.available == 0

    with pytest.raises(OutOfStock):  # well formed; the stock is not there (409)
        await container.catalog.adjust_stock(created.id, delta=-1, reason="theft", actor_id="s")
    with pytest.raises(ProductNotFound):
        await container.catalog.adjust_stock(new_id(), delta=1, reason="x", actor_id="s")

    assert await stock(container, created.id) == (0, 0, 0)
    trail = await container.catalog.adjustments(created.id, after=None, limit=10)
    assert [(a.delta, a.available_after) for a in trail.items] == [(3, 3), (4, 7), (-7, 0)]
    await assert_stock_balances(container, created.id)


async def test_a_reservation_is_all_or_nothing(container: Container) -> None:
    one, two = await product(container, stock=5), await product(container, stock=5)
    # reservations lock rows in product-id order: make the product reserved second the short one
    first, second = sorted((one, two), key=lambda p: p.id)
    order_id = new_id()

    with pytest.raises(OutOfStock) as refused:
        await reserve(container, order_id, {second.id: 6, first.id: 2})

    assert refused.value.data == {"product_id": second.id, "requested": 6, "available": 5}
    assert await stock(container, first.id) == (5, 0, 0)
    assert await stock(container, second.id) == (5, 0, 0)
    assert await reservation_rows(container.db, order_id) == []


async def test_inactive_or_unknown_products_cannot_be_reserved(container: Container) -> None:
    kept, retired = await product(container, stock=5), await product(container, stock=5)
    await container.catalog.update_product(
        retired.id, ProductChanges(active=False), expected_version=None
    )
    with pytest.raises(ProductInactive):
        await reserve(container, new_id(), {kept.id: 1, retired.id: 1})
    with pytest.raises(ProductNotFound):
        await reserve(container, new_id(), {kept.id: 1, new_id(): 1})
    assert await stock(container, kept.id) == (5, 0, 0)
    assert await stock(container, retired.id) == (5, 0, 0)


async def test_commit_release_and_return_move_the_counters_and_keep_the_balance(
    container: Container,
) -> None:
    widget, gadget = await product(container, stock=10), await product(container, stock=4)
    paid, abandoned = new_id(), new_id()

    await reserve(container, paid, {widget.id: 3, gadget.id: 4})
    await reserve(container, abandoned, {widget.id: 2})
    assert await stock(container, widget.id) == (5, 5, 0)
    assert await stock(container, gadget.id) == (0, 4, 0)
    rows = await reservation_rows(container.db, paid)
    assert sorted((r["product_id"], r["quantity"], r["state"]) for r in rows) == sorted(
        [(widget.id, 3, "active"), (gadget.id, 4, "active")]
    )
    with pytest.raises(OutOfStock):
        await reserve(container, new_id(), {gadget.id: 1})

    await move(container, paid, "commit")
    assert await stock(container, widget.id) == (5, 2, 3)
    assert await stock(container, gadget.id) == (0, 0, 4)
    await move(container, abandoned, "release")
    assert await stock(container, widget.id) == (7, 0, 3)
    await move(container, paid, "return")
    assert await stock(container, widget.id) == (10, 0, 0)
    assert await stock(container, gadget.id) == (4, 0, 0)
    assert {r["state"] for r in await reservation_rows(container.db, paid)} == {"returned"}
    assert {r["state"] for r in await reservation_rows(container.db, abandoned)} == {"released"}

    # each move happens once: repeating it finds no reservation in the right state
    for how in ("commit", "release", "return"):
        await move(container, paid, how)
        await move(container, abandoned, how)
    assert await stock(container, widget.id) == (10, 0, 0)
    assert await stock(container, gadget.id) == (4, 0, 0)
    await container.catalog.adjust_stock(widget.id, delta=-4, reason="damaged", actor_id="s")
    for item in (widget, gadget):
        await assert_stock_balances(container, item.id)


async def test_releasing_an_expired_hold_records_one_event_per_product(
    container: Container,
) -> None:
    widget, gadget = await product(container, stock=3), await product(container, stock=3)
    order_id = new_id()
    await reserve(container, order_id, {widget.id: 1, gadget.id: 2})

    await move(container, order_id, "release", expired=True)

    assert await stock(container, widget.id) == (3, 0, 0)
    assert await stock(container, gadget.id) == (3, 0, 0)
    for item, quantity in ((widget, 1), (gadget, 2)):
        expired = [
            orjson.loads(r["payload"])
            for r in await outbox_rows(container.db, item.id)
            if r["event_type"] == "ReservationExpired"
        ]
        assert expired == [{"product_id": item.id, "order_id": order_id, "quantity": quantity}]
