"""HTTP API of the catalog: browsing for everyone, product and stock management for staff."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mercato.catalog.domain import (
    MAX_STOCK_DELTA,
    MAX_WEIGHT_GRAMS,
    SKU_PATTERN,
    Adjustment,
    ErrorCode,
    Product,
)
from mercato.catalog.service import CatalogService, ProductChanges
from mercato.kernel.money import MoneyError
from mercato.platform.deps import (
    IfMatch,
    MaybeUser,
    ResourceId,
    StaffUser,
    optional_principal,
    parse_if_match,
)
from mercato.platform.openapi import AUTH_401, AUTH_403, link, problems
from mercato.platform.pagination import DEFAULT_PAGE, MAX_PAGE, decode_cursor
from mercato.platform.schemas import NOT_BLANK, WHOLE, MoneyModel, MultilineText, Text

router = APIRouter(prefix="/v1", tags=["catalog"])


async def _service(request: Request) -> CatalogService:
    service: CatalogService = request.app.state.catalog
    return service


Service = Annotated[CatalogService, Depends(_service)]
Cursor = Annotated[
    Text | None, Query(max_length=200, description="next_cursor of the previous page")
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


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


_NOT_FOUND = {404: [ErrorCode.PRODUCT_NOT_FOUND]}
# reads need no token, but one that is sent must be good (staff see more with theirs)
_TOKEN = {401: AUTH_401, 403: AUTH_403}
_PRICE = [MoneyError.INVALID_CURRENCY, MoneyError.AMOUNT_TOO_LARGE, MoneyError.NEGATIVE_AMOUNT]
_PRODUCT = [ErrorCode.INVALID_PRODUCT, *_PRICE]


def _etag(response: Response, product: Product) -> None:
    response.headers["ETag"] = f'"{product.version}"'


@router.get("/products", response_model=ProductPage, openapi_extra=problems(_TOKEN))
async def list_products(
    service: Service,
    user: MaybeUser,
    q: Annotated[Text | None, Query(max_length=100, description="text in name or SKU")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
    include_inactive: Annotated[bool, Query(description="staff only")] = False,
) -> ProductPage:
    """Browse products, filtered by text in the name or SKU; active products only."""
    staff = user is not None and user.is_staff
    page = await service.list_products(
        text=q,
        after=decode_cursor(cursor),
        limit=limit,
        include_inactive=include_inactive and staff,
    )
    return ProductPage(items=[ProductRead.of(p) for p in page.items], next_cursor=page.next_cursor)


@router.get(
    "/products/{product_id}",
    response_model=ProductRead | ProductStaffRead,
    openapi_extra=problems({**_TOKEN, **_NOT_FOUND}),
)
async def read_product(product_id: ResourceId, request: Request) -> Response:
    """One product (staff also see inactive products and stock details).

    Send a bearer token to see inactive products and stock details as staff.
    """
    # The busiest request of a shop: no sub-dependencies to solve, no response model to
    # re-validate; the row goes straight to JSON in the ProductRead shape (tested).
    user = await optional_principal(request)
    staff = user is not None and user.is_staff
    service: CatalogService = request.app.state.catalog
    shown = await service.product_view(product_id, staff=staff)
    return Response(
        orjson.dumps(shown, option=orjson.OPT_UTC_Z),
        media_type="application/json",
        headers={"ETag": f'"{shown["version"]}"'},
    )


@router.post(
    "/products",
    status_code=201,
    response_model=ProductStaffRead,
    responses={
        201: {
            "description": "The new product",
            "links": {
                "ReadProduct": link("read_product", "See it", product_id="$response.body#/id"),
                "AdjustStock": link("adjust_stock", "Stock it", product_id="$response.body#/id"),
            },
        }
    },
    openapi_extra=problems({409: [ErrorCode.SKU_TAKEN], 422: [ErrorCode.INVALID_SKU, *_PRODUCT]}),
)
async def create_product(
    body: ProductCreate, staff: StaffUser, service: Service, response: Response
) -> ProductStaffRead:
    """Add a product with its opening stock (staff only)."""
    product = await service.create_product(
        actor_id=staff.user_id,
        sku=body.sku,
        name=body.name,
        description=body.description,
        price_amount=body.price.amount,
        currency=body.price.currency,
        weight_grams=body.weight_grams,
        initial_stock=body.initial_stock,
    )
    _etag(response, product)
    response.headers["Location"] = f"/v1/products/{product.id}"
    return ProductStaffRead.of(product)


@router.patch(
    "/products/{product_id}",
    response_model=ProductStaffRead,
    openapi_extra=problems({**_NOT_FOUND, 409: [ErrorCode.PRODUCT_CONFLICT], 422: _PRODUCT}),
)
async def update_product(
    product_id: ResourceId,
    body: ProductUpdate,
    _: StaffUser,
    service: Service,
    response: Response,
    if_match: IfMatch = None,
) -> ProductStaffRead:
    """Change a product's name, description, price, weight or active flag (staff only).

    Send ``If-Match`` with the version you read to refuse the change (409) if someone else
    changed the product in between.
    """
    changes = ProductChanges(
        name=body.name,
        description=body.description,
        price_amount=body.price.amount if body.price else None,
        currency=body.price.currency if body.price else None,
        weight_grams=body.weight_grams,
        active=body.active,
    )
    product = await service.update_product(
        product_id, changes, expected_version=parse_if_match(if_match)
    )
    _etag(response, product)
    return ProductStaffRead.of(product)


@router.post(
    "/products/{product_id}/stock-adjustments",
    status_code=201,
    response_model=ProductStaffRead,
    openapi_extra=problems(
        {
            **_NOT_FOUND,
            409: [ErrorCode.OUT_OF_STOCK, ErrorCode.PRODUCT_CONFLICT],
            422: [ErrorCode.INVALID_ADJUSTMENT],
        }
    ),
)
async def adjust_stock(
    product_id: ResourceId, body: StockAdjustmentCreate, staff: StaffUser, service: Service
) -> ProductStaffRead:
    """Add (positive delta) or remove (negative) available stock, with a reason (staff only)."""
    product = await service.adjust_stock(
        product_id, delta=body.delta, reason=body.reason, actor_id=staff.user_id
    )
    return ProductStaffRead.of(product)


@router.get(
    "/products/{product_id}/stock-adjustments",
    response_model=AdjustmentPage,
    openapi_extra=problems(_NOT_FOUND),
)
async def list_adjustments(
    product_id: ResourceId,
    _: StaffUser,
    service: Service,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> AdjustmentPage:
    """The stock audit trail of a product, oldest first (staff only)."""
    page = await service.adjustments(product_id, after=decode_cursor(cursor), limit=limit)
    return AdjustmentPage(
        items=[AdjustmentRead.of(a) for a in page.items], next_cursor=page.next_cursor
    )
