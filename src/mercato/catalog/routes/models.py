"""The catalog API's request and response models."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mercato.catalog.domain import (
    MAX_STOCK_DELTA,
    MAX_WEIGHT_GRAMS,
    SKU_PATTERN,
    Adjustment,
    Product,
)
from mercato.platform.schemas import NOT_BLANK, WHOLE, MoneyModel, MultilineText, Text

_VISIBLE: dict[str, Any] = {"pattern": NOT_BLANK}


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: Annotated[
        Text,
        Field(
            min_length=1,
            max_length=64,
            examples=["MUG-BLUE"],
            json_schema_extra={"pattern": SKU_PATTERN},
        ),
    ]
    name: Annotated[Text, Field(min_length=1, max_length=200, json_schema_extra=_VISIBLE)]
    description: Annotated[MultilineText, Field(max_length=5000)] = ""
    price: MoneyModel
    weight_grams: Annotated[int, Field(ge=0, le=MAX_WEIGHT_GRAMS, strict=True), WHOLE] = 0
    initial_stock: Annotated[int, Field(ge=0, le=MAX_STOCK_DELTA, strict=True), WHOLE] = 0


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[
        Text | None, Field(min_length=1, max_length=200, json_schema_extra=_VISIBLE)
    ] = None
    description: Annotated[MultilineText | None, Field(max_length=5000)] = None
    price: MoneyModel | None = None
    weight_grams: Annotated[int | None, Field(ge=0, le=MAX_WEIGHT_GRAMS, strict=True), WHOLE] = None
    active: Annotated[bool | None, Field(strict=True)] = None


class StockAdjustmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delta: Annotated[
        int,
        Field(
            ge=-MAX_STOCK_DELTA,
            le=MAX_STOCK_DELTA,
            strict=True,
            examples=[25],
            description="Not zero",
            json_schema_extra={"not": {"const": 0}},
        ),
        WHOLE,
    ]
    reason: Annotated[
        Text,
        Field(
            min_length=1,
            max_length=500,
            examples=["delivery from supplier"],
            json_schema_extra=_VISIBLE,
        ),
    ]


class ProductRead(BaseModel):
    id: str
    sku: str
    name: str
    description: str
    price: MoneyModel
    weight_grams: int
    active: bool
    available: int
    version: int

    @classmethod
    def of(cls, p: Product) -> ProductRead:
        return cls(
            id=p.id,
            sku=p.sku,
            name=p.name,
            description=p.description,
            price=MoneyModel.of(p.price),
            weight_grams=p.weight_grams,
            active=p.active,
            available=p.available,
            version=p.version,
        )


class ProductStaffRead(ProductRead):
    reserved: int
    sold: int
    on_hand: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Product) -> ProductStaffRead:
        return cls(
            **ProductRead.of(p).model_dump(),
            reserved=p.reserved,
            sold=p.sold,
            on_hand=p.on_hand,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class ProductPage(BaseModel):
    items: list[ProductRead]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class AdjustmentRead(Adjustment):
    # An audit trail entry is shown as the domain records it: the fields are declared once, in
    # the domain; this subclass only names its schema (no docstring: it would become one).

    @classmethod
    def of(cls, a: Adjustment) -> AdjustmentRead:
        return cls(**asdict(a))


class AdjustmentPage(BaseModel):
    items: list[AdjustmentRead]
    next_cursor: str | None
