"""The catalog's use cases against the fake unit of work: the business rules, without SQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mercato.catalog import CatalogService, OutOfStock, Product, ProductInactive, ProductNotFound
from mercato.catalog.domain import InvalidAdjustment, ProductConflict, ReservedLine, SkuTaken
from mercato.catalog.events import (
    ProductCreated,
    ProductUpdated,
    ReservationExpired,
    StockAdjusted,
)
from mercato.catalog.service import ProductChanges
from mercato.catalog.store import ProductRepository
from mercato.kernel.errors import InvalidValue
from mercato.platform.uow import UnitOfWork
from tests.fakes import FakeTransactor
from tests.fakes.catalog import product_rows

pytestmark = pytest.mark.anyio

STAFF = "staff-1"


@pytest.fixture
def transact() -> FakeTransactor:
    return FakeTransactor()


@pytest.fixture
def catalog(transact: FakeTransactor) -> CatalogService:
    return CatalogService(transact)


async def new_product(
    catalog: CatalogService, sku: str = "MUG", *, stock: int = 10, price: int = 1000
) -> Product:
    return await catalog.create_product(
        actor_id=STAFF,
        sku=sku,
        name=f"Product {sku}",
        description="",
        price_amount=price,
        currency="EUR",
        weight_grams=300,
        initial_stock=stock,
    )


def counters(transact: FakeTransactor, product_id: str) -> tuple[int, int, int]:
    row = transact.tables["catalog_products"][product_id]
    return row["available"], row["reserved"], row["sold"]


async def in_uow(
    transact: FakeTransactor, work_on: Callable[..., Awaitable[object]], *args: Any, **kw: Any
) -> None:
    """Run one of the catalog's in-transaction calls (orders' view of it) in a unit of work."""

    async def work(uow: UnitOfWork) -> None:
        await work_on(uow, *args, **kw)

    await transact(work)


# -- products ----------------------------------------------------------------------------


async def test_a_new_product_publishes_its_creation_then_its_opening_stock(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    created = await new_product(catalog, "mug-01", stock=12)
    assert (created.sku, created.available, created.version) == ("MUG-01", 12, 1)
    assert [type(e) for e in transact.outbox] == [ProductCreated, StockAdjusted]
    assert transact.events(StockAdjusted) == [
        StockAdjusted(
            product_id=created.id, delta=12, reason="initial stock", available=12, actor_id=STAFF
        )
    ]
    trail = await catalog.adjustments(created.id, after=None, limit=10)
    assert [(a.delta, a.reason, a.available_after) for a in trail.items] == [
        (12, "initial stock", 12)
    ]


async def test_a_product_without_opening_stock_has_no_audit_entry(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    created = await new_product(catalog, stock=0)
    assert [type(e) for e in transact.outbox] == [ProductCreated]
    assert (await catalog.adjustments(created.id, after=None, limit=10)).items == []


async def test_a_taken_sku_is_refused_and_writes_nothing(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    first = await new_product(catalog, "MUG")
    with pytest.raises(SkuTaken):
        await new_product(catalog, "mug ")
    assert list(transact.tables["catalog_products"]) == [first.id]
    assert len(transact.events(ProductCreated)) == 1


@pytest.mark.parametrize("stock", [-1, 1_000_001])
async def test_an_impossible_opening_stock_is_refused_before_anything_is_written(
    catalog: CatalogService, transact: FakeTransactor, stock: int
) -> None:
    with pytest.raises(InvalidAdjustment):
        await new_product(catalog, stock=stock)
    assert transact.units == 0


async def test_an_update_changes_the_attributes_bumps_the_version_and_says_what_changed(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    created = await new_product(catalog, price=1000)
    changes = ProductChanges(name="Big mug", price_amount=1500)
    updated = await catalog.update_product(created.id, changes, expected_version=1)
    assert (updated.name, updated.price.amount, updated.version) == ("Big mug", 1500, 2)
    row = transact.tables["catalog_products"][created.id]
    assert (row["name"], row["price_amount"], row["version"]) == ("Big mug", 1500, 2)
    assert transact.events(ProductUpdated) == [
        ProductUpdated(product_id=created.id, changed=["name", "price"], active=True)
    ]


async def test_a_currency_change_keeps_the_amount(catalog: CatalogService) -> None:
    created = await new_product(catalog, price=1000)
    updated = await catalog.update_product(
        created.id, ProductChanges(currency="USD"), expected_version=None
    )
    assert (updated.price.amount, updated.price.currency) == (1000, "USD")


async def test_an_update_that_changes_nothing_writes_and_publishes_nothing(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    created = await new_product(catalog)
    same = await catalog.update_product(
        created.id, ProductChanges(name=created.name), expected_version=1
    )
    assert same.version == 1
    assert transact.events(ProductUpdated) == []


async def test_an_update_against_a_stale_version_is_a_conflict_naming_the_current_one(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    created = await new_product(catalog)
    await catalog.update_product(created.id, ProductChanges(name="Two"), expected_version=1)
    with pytest.raises(ProductConflict) as refused:
        await catalog.update_product(created.id, ProductChanges(name="Three"), expected_version=1)
    assert refused.value.data["current_version"] == 2
    assert transact.tables["catalog_products"][created.id]["name"] == "Two"


async def test_a_save_after_someone_else_moved_the_row_is_a_conflict_not_a_lost_update(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    created = await new_product(catalog)

    async def edit_while_another_commits(uow: UnitOfWork) -> None:
        products = uow.repository(ProductRepository)
        mine = await products.get(created.id)
        product_rows(uow)[created.id].update(name="Theirs", version=2)  # the other writer
        mine.update(now=datetime.now(UTC), name="Mine")
        await products.save(mine)

    with pytest.raises(ProductConflict) as refused:
        await transact(edit_while_another_commits)
    assert refused.value.data["current_version"] == 2
    assert transact.events(ProductUpdated) == []


async def test_an_invalid_update_or_an_unknown_product_is_refused(
    catalog: CatalogService,
) -> None:
    created = await new_product(catalog)
    with pytest.raises(InvalidValue):
        await catalog.update_product(created.id, ProductChanges(name=" "), expected_version=None)
    with pytest.raises(ProductNotFound):
        await catalog.update_product("nope", ProductChanges(name="x"), expected_version=None)


async def test_inactive_products_are_hidden_from_shoppers_but_not_from_staff(
    catalog: CatalogService,
) -> None:
    created = await new_product(catalog, "HIDDEN")
    await new_product(catalog, "SHOWN")
    await catalog.update_product(created.id, ProductChanges(active=False), expected_version=None)
    with pytest.raises(ProductNotFound):
        await catalog.product_view(created.id, staff=False)
    assert (await catalog.product_view(created.id, staff=True))["on_hand"] == 10
    shopper = await catalog.list_products(text=None, after=None, limit=10)
    staff = await catalog.list_products(text="hid", after=None, limit=10, include_inactive=True)
    assert [p.sku for p in shopper.items] == ["SHOWN"]
    assert [p.sku for p in staff.items] == ["HIDDEN"]


# -- stock adjustments -------------------------------------------------------------------


async def test_an_adjustment_moves_available_stock_and_is_audited(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    created = await new_product(catalog, stock=10)
    after = await catalog.adjust_stock(created.id, delta=-4, reason=" broken ", actor_id=STAFF)
    assert after.available == 6
    assert transact.events(StockAdjusted)[-1] == StockAdjusted(
        product_id=created.id, delta=-4, reason="broken", available=6, actor_id=STAFF
    )
    trail = await catalog.adjustments(created.id, after=None, limit=1)
    assert [a.delta for a in trail.items] == [10]
    assert trail.next_cursor is not None


async def test_an_adjustment_below_zero_is_refused_and_changes_nothing(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    created = await new_product(catalog, stock=3)
    with pytest.raises(OutOfStock, match="only 3 left"):
        await catalog.adjust_stock(created.id, delta=-4, reason="count", actor_id=STAFF)
    assert counters(transact, created.id) == (3, 0, 0)
    assert len(transact.events(StockAdjusted)) == 1


@pytest.mark.parametrize(("delta", "reason"), [(0, "none"), (5, " "), (2_000_000, "big")])
async def test_a_malformed_adjustment_is_refused_before_any_work(
    catalog: CatalogService, transact: FakeTransactor, delta: int, reason: str
) -> None:
    created = await new_product(catalog)
    with pytest.raises(InvalidAdjustment):
        await catalog.adjust_stock(created.id, delta=delta, reason=reason, actor_id=STAFF)
    assert transact.units == 1


async def test_adjusting_or_auditing_an_unknown_product_is_not_found(
    catalog: CatalogService,
) -> None:
    with pytest.raises(ProductNotFound):
        await catalog.adjust_stock("nope", delta=1, reason="count", actor_id=STAFF)
    with pytest.raises(ProductNotFound):
        await catalog.adjustments("nope", after=None, limit=10)


# -- reservations ------------------------------------------------------------------------

SOON = datetime.now(UTC) + timedelta(minutes=15)


async def test_reserving_holds_every_line_at_the_current_price(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    mug = await new_product(catalog, "MUG", stock=5, price=700)
    cup = await new_product(catalog, "CUP", stock=5)
    lines: list[ReservedLine] = []

    async def work(uow: UnitOfWork) -> None:
        lines.extend(await catalog.reserve(uow, "o1", {mug.id: 2, cup.id: 5}, expires_at=SOON))

    await transact(work)
    assert sorted((line.sku, line.quantity, line.price.amount) for line in lines) == [
        ("CUP", 5, 1000),
        ("MUG", 2, 700),
    ]
    assert counters(transact, mug.id) == (3, 2, 0)
    assert counters(transact, cup.id) == (0, 5, 0)


@pytest.mark.parametrize("refusal", ["out_of_stock", "inactive", "unknown"])
async def test_one_line_that_cannot_be_held_refuses_the_whole_reservation(
    catalog: CatalogService, transact: FakeTransactor, refusal: str
) -> None:
    mug = await new_product(catalog, "MUG", stock=5)
    other = (await new_product(catalog, "CUP", stock=1)).id
    wanted = {mug.id: 2, other: 2 if refusal == "out_of_stock" else 1}
    if refusal == "inactive":
        await catalog.update_product(other, ProductChanges(active=False), expected_version=None)
    if refusal == "unknown":
        wanted = {mug.id: 2, "zz-unknown": 1}
    expected = {"out_of_stock": OutOfStock, "inactive": ProductInactive, "unknown": ProductNotFound}
    with pytest.raises(expected[refusal]):
        await in_uow(transact, catalog.reserve, "o1", wanted, expires_at=SOON)
    assert counters(transact, mug.id) == (5, 0, 0)
    assert reservation_rows_of(transact) == []


def reservation_rows_of(transact: FakeTransactor) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = transact.tables.get("catalog_reservations", [])
    return rows


async def test_the_last_unit_goes_to_one_order_only(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    last = await new_product(catalog, stock=1)
    await in_uow(transact, catalog.reserve, "first", {last.id: 1}, expires_at=SOON)
    with pytest.raises(OutOfStock) as refused:
        await in_uow(transact, catalog.reserve, "second", {last.id: 1}, expires_at=SOON)
    assert refused.value.data["available"] == 0
    assert counters(transact, last.id) == (0, 1, 0)


async def test_a_paid_reservation_becomes_sold_and_a_cancellation_returns_it(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    mug = await new_product(catalog, stock=5)
    await in_uow(transact, catalog.reserve, "o1", {mug.id: 2}, expires_at=SOON)
    await in_uow(transact, catalog.commit_reservation, "o1")
    assert counters(transact, mug.id) == (3, 0, 2)
    await in_uow(transact, catalog.release_reservation, "o1")  # nothing active: no change
    assert counters(transact, mug.id) == (3, 0, 2)
    await in_uow(transact, catalog.return_stock, "o1")
    await in_uow(transact, catalog.return_stock, "o1")  # a second return finds nothing
    assert counters(transact, mug.id) == (5, 0, 0)


async def test_a_released_reservation_goes_back_and_an_expiry_is_published(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    mug = await new_product(catalog, stock=5)
    await in_uow(transact, catalog.reserve, "failed", {mug.id: 1}, expires_at=SOON)
    await in_uow(transact, catalog.reserve, "expired", {mug.id: 2}, expires_at=SOON)
    await in_uow(transact, catalog.release_reservation, "failed")
    await in_uow(transact, catalog.release_reservation, "expired", expired=True)
    assert counters(transact, mug.id) == (5, 0, 0)
    assert transact.events(ReservationExpired) == [
        ReservationExpired(product_id=mug.id, order_id="expired", quantity=2)
    ]
    await in_uow(transact, catalog.commit_reservation, "expired")  # too late: nothing to sell
    assert counters(transact, mug.id) == (5, 0, 0)


async def test_expired_reservations_are_found_oldest_first(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    mug = await new_product(catalog, stock=9)
    now = datetime.now(UTC)
    for order_id, minutes in [("newer", -1), ("older", -5), ("live", 10)]:
        expires = now + timedelta(minutes=minutes)
        await in_uow(transact, catalog.reserve, order_id, {mug.id: 1}, expires_at=expires)
    assert await catalog.expired_reservations(limit=10) == ["older", "newer"]
    assert await catalog.expired_reservations(limit=1) == ["older"]


async def test_an_order_line_describes_only_an_active_product(
    catalog: CatalogService, transact: FakeTransactor
) -> None:
    mug = await new_product(catalog, "MUG", price=1299)

    async def describe(uow: UnitOfWork) -> tuple[str, int]:
        line = await catalog.describe_for_order(uow, mug.id)
        return line.sku, line.price.amount

    assert await transact(describe) == ("MUG", 1299)
    await catalog.update_product(mug.id, ProductChanges(active=False), expected_version=None)
    with pytest.raises(ProductInactive):
        await transact(describe)
