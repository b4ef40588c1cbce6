"""The catalog: products, their price and weight, and the stock rules.

Stock is three counters per product: ``available`` (free to sell), ``reserved`` (held for
orders being paid) and ``sold``. Reserving moves units from available to reserved; a paid order
moves them from reserved to sold; a failed or expired checkout moves them back to available;
cancelling a paid order returns them from sold to available; staff adjustments change available.
So for every product: initial stock + adjustments = available + reserved + sold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mercato.catalog.events import ProductCreated, ProductUpdated, StockAdjusted
from mercato.kernel.errors import Conflict, InvalidValue, NotFound
from mercato.kernel.events import AggregateRoot
from mercato.kernel.money import Money

MAX_WEIGHT_GRAMS = 1_000_000
MAX_STOCK_DELTA = 1_000_000
_SKU = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,63}$")
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""A SKU as clients may send it (stored upper-cased); the OpenAPI document's pattern."""


class ErrorCode(StrEnum):
    PRODUCT_NOT_FOUND = "product_not_found"
    PRODUCT_INACTIVE = "product_inactive"
    SKU_TAKEN = "sku_taken"
    INVALID_SKU = "invalid_sku"
    INVALID_PRODUCT = "invalid_product"
    OUT_OF_STOCK = "out_of_stock"
    INVALID_ADJUSTMENT = "invalid_stock_adjustment"
    PRODUCT_CONFLICT = "product_conflict"


class ProductNotFound(NotFound):
    def __init__(self, product_id: str) -> None:
        super().__init__(ErrorCode.PRODUCT_NOT_FOUND, "no such product", product_id=product_id)


class ProductInactive(Conflict):
    def __init__(self, product_id: str) -> None:
        super().__init__(
            ErrorCode.PRODUCT_INACTIVE, "the product is not for sale", product_id=product_id
        )


class SkuTaken(Conflict):
    def __init__(self, sku: str) -> None:
        super().__init__(ErrorCode.SKU_TAKEN, f"SKU {sku} is already in use", field="sku")


class OutOfStock(Conflict):
    def __init__(self, product_id: str, *, requested: int, available: int) -> None:
        super().__init__(
            ErrorCode.OUT_OF_STOCK,
            f"only {available} left of product {product_id}, {requested} requested",
            product_id=product_id,
            requested=requested,
            available=available,
        )


class InvalidAdjustment(InvalidValue):
    def __init__(self, message: str, *, field: str = "delta") -> None:
        super().__init__(ErrorCode.INVALID_ADJUSTMENT, message, field=field)


class ProductConflict(Conflict):
    def __init__(self, product_id: str, *, current_version: int) -> None:
        super().__init__(
            ErrorCode.PRODUCT_CONFLICT,
            "the product was changed by someone else; reload and retry",
            product_id=product_id,
            current_version=current_version,
        )


def check_sku(sku: str) -> str:
    """An upper-case SKU of 1-64 letters, digits, '.', '_' or '-'."""
    stripped = sku.strip()
    normalised = stripped.upper()
    # ASCII first: upper() maps some non-ASCII letters onto ASCII ones ("ß" -> "SS")
    if not stripped.isascii() or not _SKU.match(normalised):
        raise InvalidValue(
            ErrorCode.INVALID_SKU,
            "sku must be 1-64 characters: letters, digits, '.', '_' or '-'",
            field="sku",
        )
    return normalised


def _check_text(value: str, *, field: str, max_len: int, required: bool = True) -> str:
    cleaned = value.strip()
    if (required and not cleaned) or len(cleaned) > max_len:
        raise InvalidValue(
            ErrorCode.INVALID_PRODUCT, f"{field} must be 1-{max_len} characters", field=field
        )
    return cleaned


def _check_weight(grams: int) -> int:
    if not 0 <= grams <= MAX_WEIGHT_GRAMS:
        raise InvalidValue(
            ErrorCode.INVALID_PRODUCT,
            f"weight_grams must be between 0 and {MAX_WEIGHT_GRAMS}",
            field="weight_grams",
        )
    return grams


def _check_name(name: str) -> str:
    return _check_text(name, field="name", max_len=200)


def _check_description(description: str) -> str:
    return _check_text(description, field="description", max_len=5000, required=False)


def _check_price(price: Money) -> Money:
    if price.amount < 0:
        raise InvalidValue(ErrorCode.INVALID_PRODUCT, "price cannot be negative", field="price")
    return price


def check_opening_stock(units: int) -> int:
    """The opening stock of a new product: 0 to MAX_STOCK_DELTA units; InvalidAdjustment else."""
    if not 0 <= units <= MAX_STOCK_DELTA:
        raise InvalidAdjustment(
            f"initial_stock must be between 0 and {MAX_STOCK_DELTA}", field="initial_stock"
        )
    return units


def check_adjustment(delta: int, reason: str) -> tuple[int, str]:
    """A non-zero stock change with a reason for the audit trail."""
    if delta == 0 or abs(delta) > MAX_STOCK_DELTA:
        raise InvalidAdjustment(f"delta must be non-zero and at most {MAX_STOCK_DELTA} in size")
    cleaned = reason.strip()
    if not 1 <= len(cleaned) <= 500:
        raise InvalidAdjustment("reason must be 1-500 characters", field="reason")
    return delta, cleaned


@dataclass(eq=False)
class Product(AggregateRoot):
    """A product for sale. Its stock counters move only by the stock repository's guarded
    updates; the aggregate takes the counts they leave (a save never writes them)."""

    id: str
    sku: str
    name: str
    description: str
    price: Money
    weight_grams: int
    active: bool
    available: int
    reserved: int
    sold: int
    created_at: datetime
    updated_at: datetime
    version: int = 1

    @classmethod
    def create(
        cls,
        *,
        id: str,
        sku: str,
        name: str,
        description: str,
        price: Money,
        weight_grams: int,
        initial_stock: int,
        now: datetime,
    ) -> Product:
        """A new active product with its opening stock."""
        price = _check_price(price)
        product = cls(
            id=id,
            sku=check_sku(sku),
            name=_check_name(name),
            description=_check_description(description),
            price=price,
            weight_grams=_check_weight(weight_grams),
            active=True,
            available=check_opening_stock(initial_stock),
            reserved=0,
            sold=0,
            created_at=now,
            updated_at=now,
        )
        product.record(
            ProductCreated(
                product_id=id,
                sku=product.sku,
                name=product.name,
                price_amount=price.amount,
                currency=price.currency,
            )
        )
        return product

    def update(
        self,
        *,
        now: datetime,
        name: str | None = None,
        description: str | None = None,
        price: Money | None = None,
        weight_grams: int | None = None,
        active: bool | None = None,
    ) -> list[str]:
        """Change the given attributes; returns the names of those that changed."""
        changes: dict[str, object] = {}
        if name is not None:
            changes["name"] = _check_name(name)
        if description is not None:
            changes["description"] = _check_description(description)
        if price is not None:
            changes["price"] = _check_price(price)
        if weight_grams is not None:
            changes["weight_grams"] = _check_weight(weight_grams)
        if active is not None:
            changes["active"] = active
        changed = [key for key, value in changes.items() if getattr(self, key) != value]
        for key in changed:
            setattr(self, key, changes[key])
        if changed:
            self.updated_at = now
            self.version += 1
            self.record(ProductUpdated(product_id=self.id, changed=changed, active=self.active))
        return changed

    def stock_adjusted(self, *, delta: int, reason: str, available: int, actor_id: str) -> None:
        """Take the available count a staff adjustment left and record the adjustment."""
        self.available = available
        self.record(
            StockAdjusted(
                product_id=self.id,
                delta=delta,
                reason=reason,
                available=available,
                actor_id=actor_id,
            )
        )

    @property
    def on_hand(self) -> int:
        """Units physically held: free plus reserved."""
        return self.available + self.reserved


@dataclass(frozen=True, slots=True)
class Adjustment:
    """One entry of a product's stock audit trail."""

    id: str
    product_id: str
    delta: int
    reason: str
    actor_id: str
    available_after: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReservedLine:
    """What a reservation tells the order about one product at the moment it was reserved."""

    product_id: str
    sku: str
    name: str
    price: Money
    weight_grams: int
    quantity: int
