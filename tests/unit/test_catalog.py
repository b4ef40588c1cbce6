"""Catalog rules: SKUs, products and stock adjustments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mercato.catalog.domain import (
    MAX_STOCK_DELTA,
    MAX_WEIGHT_GRAMS,
    Product,
    check_adjustment,
    check_sku,
)
from mercato.catalog.events import ProductCreated, ProductUpdated, StockAdjusted
from mercato.kernel.errors import InvalidValue
from mercato.kernel.money import Money
from tests.unit.builders import T0

LATER = T0 + timedelta(minutes=5)


def create(**overrides: Any) -> Product:
    values: dict[str, Any] = {
        "id": "prod-1",
        "sku": "mug-01",
        "name": "  Mug ",
        "description": " A mug. ",
        "price": Money(1299, "EUR"),
        "weight_grams": 350,
        "initial_stock": 10,
        "now": T0,
    }
    values.update(overrides)
    return Product.create(**values)


def created() -> Product:
    product = create()
    product.pull_events()
    return product


# -- SKUs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "sku"),
    [
        ("abc-123", "ABC-123"),
        ("  mug.01_red ", "MUG.01_RED"),
        ("X", "X"),
        ("9", "9"),
        ("A" * 64, "A" * 64),
    ],
)
def test_skus_are_trimmed_and_upper_cased(raw: str, sku: str) -> None:
    assert check_sku(raw) == sku


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "A" * 65,
        "-ABC",
        ".ABC",
        "_ABC",
        "AB C",
        "AB/C",
        "AB#1",
        "ÄBC",
        "AB\nC",
        "A\u00a0B",
    ],
)
def test_malformed_skus_are_refused(raw: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        check_sku(raw)
    assert exc.value.code == "invalid_sku"
    assert exc.value.field == "sku"


# -- Product.create ---------------------------------------------------------------------------


def test_creating_a_product_normalises_it_and_records_product_created() -> None:
    product = create()
    assert (product.sku, product.name, product.description) == ("MUG-01", "Mug", "A mug.")
    assert (product.price, product.weight_grams) == (Money(1299, "EUR"), 350)
    assert (product.available, product.reserved, product.sold, product.on_hand) == (10, 0, 0, 10)
    assert (product.active, product.version, product.created_at, product.updated_at) == (
        True,
        1,
        T0,
        T0,
    )
    assert product.pull_events() == [
        ProductCreated(
            product_id="prod-1", sku="MUG-01", name="Mug", price_amount=1299, currency="EUR"
        )
    ]


def test_a_product_may_be_free_weightless_without_description_and_out_of_stock() -> None:
    product = create(price=Money(0, "EUR"), weight_grams=0, description="  ", initial_stock=0)
    assert (product.price.amount, product.weight_grams, product.description) == (0, 0, "")
    assert product.available == 0


def test_the_upper_limits_of_weight_and_opening_stock_are_accepted() -> None:
    product = create(weight_grams=MAX_WEIGHT_GRAMS, initial_stock=MAX_STOCK_DELTA)
    assert (product.weight_grams, product.available) == (MAX_WEIGHT_GRAMS, MAX_STOCK_DELTA)


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"price": Money(-1, "EUR")}, "invalid_product", "price"),
        ({"name": "   "}, "invalid_product", "name"),
        ({"name": "n" * 201}, "invalid_product", "name"),
        ({"description": "d" * 5001}, "invalid_product", "description"),
        ({"weight_grams": -1}, "invalid_product", "weight_grams"),
        ({"weight_grams": MAX_WEIGHT_GRAMS + 1}, "invalid_product", "weight_grams"),
        ({"initial_stock": -1}, "invalid_stock_adjustment", "initial_stock"),
        ({"initial_stock": MAX_STOCK_DELTA + 1}, "invalid_stock_adjustment", "initial_stock"),
        ({"sku": "no spaces"}, "invalid_sku", "sku"),
    ],
)
def test_creating_an_invalid_product_is_refused(
    overrides: dict[str, Any], code: str, field: str
) -> None:
    with pytest.raises(InvalidValue) as exc:
        create(**overrides)
    assert exc.value.code == code
    assert exc.value.field == field


# -- Product.update ---------------------------------------------------------------------------


def test_updating_returns_the_changed_fields_bumps_the_version_and_records_it() -> None:
    product = created()
    changed = product.update(now=LATER, name=" Big mug ", price=Money(1499, "EUR"))
    assert changed == ["name", "price"]
    assert (product.name, product.price) == ("Big mug", Money(1499, "EUR"))
    assert (product.version, product.updated_at) == (2, LATER)
    assert product.pull_events() == [
        ProductUpdated(product_id="prod-1", changed=["name", "price"], active=True)
    ]


def test_updating_to_the_same_values_changes_nothing() -> None:
    product = created()
    changed = product.update(
        now=LATER,
        name="Mug",
        description="A mug.",
        price=Money(1299, "EUR"),
        weight_grams=350,
        active=True,
    )
    assert changed == []
    assert (product.version, product.updated_at, product.pending_events) == (1, T0, ())


def test_updating_with_nothing_given_changes_nothing() -> None:
    product = created()
    assert product.update(now=LATER) == []
    assert product.version == 1


def test_updating_only_reports_fields_whose_values_differ() -> None:
    product = created()
    changed = product.update(now=LATER, name="Mug", weight_grams=400, active=False)
    assert changed == ["weight_grams", "active"]
    assert (product.weight_grams, product.active, product.version) == (400, False, 2)
    [event] = product.pull_events()
    assert event == ProductUpdated(
        product_id="prod-1", changed=["weight_grams", "active"], active=False
    )


def test_a_name_that_only_differs_by_surrounding_spaces_is_no_change() -> None:
    product = created()
    assert product.update(now=LATER, name="  Mug  ") == []
    assert product.version == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"description": "d" * 5001}, "description"),
        ({"price": Money(-5, "EUR")}, "price"),
        ({"weight_grams": -1}, "weight_grams"),
    ],
)
def test_an_invalid_update_is_refused_and_changes_nothing(
    changes: dict[str, Any], field: str
) -> None:
    product = created()
    with pytest.raises(InvalidValue) as exc:
        product.update(now=LATER, active=False, **changes)
    assert exc.value.code == "invalid_product"
    assert exc.value.field == field
    assert (product.active, product.version, product.pending_events) == (True, 1, ())


# -- stock adjustments ------------------------------------------------------------------------


@pytest.mark.parametrize("delta", [1, -1, MAX_STOCK_DELTA, -MAX_STOCK_DELTA])
def test_a_non_zero_adjustment_with_a_reason_is_accepted(delta: int) -> None:
    assert check_adjustment(delta, "  stocktake ") == (delta, "stocktake")


@pytest.mark.parametrize("delta", [0, MAX_STOCK_DELTA + 1, -MAX_STOCK_DELTA - 1])
def test_a_zero_or_oversized_adjustment_is_refused(delta: int) -> None:
    with pytest.raises(InvalidValue) as exc:
        check_adjustment(delta, "stocktake")
    assert exc.value.code == "invalid_stock_adjustment"
    assert exc.value.field == "delta"


@pytest.mark.parametrize("reason", ["", "   ", "r" * 501])
def test_an_adjustment_without_a_reason_or_with_an_overlong_one_is_refused(reason: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        check_adjustment(5, reason)
    assert exc.value.code == "invalid_stock_adjustment"
    assert exc.value.field == "reason"


def test_a_reason_of_500_characters_is_accepted() -> None:
    assert check_adjustment(5, "r" * 500) == (5, "r" * 500)


def test_the_adjustment_event_carries_the_new_availability_and_actor() -> None:
    product = created()
    product.stock_adjusted(delta=-3, reason="broken", available=7, actor_id="staff-1")
    [event] = product.pull_events()
    assert event == StockAdjusted(
        product_id="prod-1", delta=-3, reason="broken", available=7, actor_id="staff-1"
    )
    assert event.aggregate_id == "prod-1"
    assert event.aggregate_type == "product"
    assert product.available == 7


def test_a_sku_with_non_ascii_letters_is_refused_even_when_upper_case_would_be_ascii() -> None:
    from mercato.catalog.domain import check_sku
    from mercato.kernel.errors import InvalidValue

    for sku in ("straße", "\u0131tem"):
        with pytest.raises(InvalidValue) as refused:
            check_sku(sku)
        assert refused.value.code == "invalid_sku"
