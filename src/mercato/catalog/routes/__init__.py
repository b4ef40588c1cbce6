"""HTTP API of the catalog: browsing for everyone, product and stock management for staff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import TypeAdapter, ValidationError
from starlette.types import Receive, Scope

from mercato.catalog.domain import ErrorCode, Product
from mercato.catalog.routes import search
from mercato.catalog.routes.models import (
    AdjustmentPage,
    AdjustmentRead,
    ProductCreate,
    ProductPage,
    ProductRead,
    ProductStaffRead,
    ProductUpdate,
    StockAdjustmentCreate,
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
from mercato.platform.http import header
from mercato.platform.openapi import AUTH_401, AUTH_403, link, problems
from mercato.platform.pagination import DEFAULT_PAGE, MAX_PAGE, decode_cursor
from mercato.platform.routing import Answer, InFront
from mercato.platform.schemas import Text

router = APIRouter(prefix="/v1", tags=["catalog"])
search_router = search.router
"""``/v1/products/search``: included before this router, whose ``/products/{product_id}``
would take "search" for an id."""


async def _service(request: Request) -> CatalogService:
    service: CatalogService = request.app.state.catalog
    return service


Service = Annotated[CatalogService, Depends(_service)]
Cursor = Annotated[
    Text | None, Query(max_length=200, description="next_cursor of the previous page")
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


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
    body, etag = _shown(shown)
    return Response(body, media_type="application/json", headers={"ETag": etag})


def _shown(shown: dict[str, Any]) -> tuple[bytes, str]:
    """A product view's JSON body and its ETag (the product's version)."""
    return orjson.dumps(shown, option=orjson.OPT_UTC_Z), f'"{shown["version"]}"'


_PRODUCT_ID: TypeAdapter[str] = TypeAdapter(ResourceId)


async def read_product_in_front(scope: Scope, receive: Receive) -> Answer | None:
    """:func:`read_product`'s answer to a request without a token (a shop's browsing), made
    in front of FastAPI's routing (:class:`~mercato.platform.routing.InFrontOfRoutes`); None
    for any other request, which the route answers (a token, an id the route refuses)."""
    if header(scope, b"authorization") is not None:
        return None
    product_id: str = scope["path_params"]["product_id"]
    try:
        _PRODUCT_ID.validate_python(product_id)  # kept as given: valid means unchanged
    except ValidationError:
        return None
    service: CatalogService = scope["app"].state.catalog
    body, etag = _shown(await service.product_view(product_id, staff=False))
    # the headers read_product's Response has, in its order
    headers = [
        (b"etag", etag.encode()),
        (b"content-length", b"%d" % len(body)),
        (b"content-type", b"application/json"),
    ]
    return Answer(200, headers, body)


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


IN_FRONT: dict[Callable[..., Any], InFront] = {read_product: read_product_in_front}
"""The routes answered in front of FastAPI's routing, by endpoint."""
