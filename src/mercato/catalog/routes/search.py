"""``GET /v1/products/search`` and ``/v1/products/{id}/similar``: hybrid product search and
similar products for shoppers (docs/search.md)."""

from __future__ import annotations

import hashlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field

from mercato.catalog.domain import ErrorCode
from mercato.catalog.domain.search import MAX_QUERY_LENGTH, Filters, SearchError, Signal
from mercato.catalog.routes.models import ProductRead
from mercato.catalog.service import CatalogService
from mercato.catalog.service.search import SearchPage
from mercato.kernel.money import MAX_AMOUNT
from mercato.platform.deps import ResourceId, optional_principal
from mercato.platform.openapi import AUTH_401, AUTH_403, problems
from mercato.platform.pagination import DEFAULT_PAGE, MAX_PAGE
from mercato.platform.schemas import NOT_BLANK, Text

router = APIRouter(prefix="/v1", tags=["catalog"])

SearchText = Annotated[
    Text,
    Query(
        min_length=1,
        max_length=MAX_QUERY_LENGTH,
        description="What the shopper typed: words, part of a word, a SKU, a description",
        json_schema_extra={"pattern": NOT_BLANK},
    ),
]
IfNoneMatch = Annotated[
    Text | None,
    Header(alias="If-None-Match", max_length=200, description="The ETag of an earlier answer"),
]
Price = Annotated[int | None, Query(ge=0, le=MAX_AMOUNT, description="minor units, inclusive")]


class SearchHit(BaseModel):
    product: ProductRead
    score: float = Field(description="Higher is better; comparable within one answer only")
    signals: list[Signal] = Field(
        description="What matched: the exact SKU, words, trigrams (typos and partial words), "
        "meaning (semantic)"
    )


class SearchResults(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None


def _body(page: SearchPage) -> bytes:
    shown = {
        "items": [
            {"product": f.product, "score": f.score, "signals": f.signals} for f in page.items
        ],
        "next_cursor": page.next_cursor,
    }
    return orjson.dumps(shown)


@router.get(
    "/products/search",
    response_model=SearchResults,
    responses={304: {"description": "Not modified: the ETag in If-None-Match is current"}},
    openapi_extra=problems({401: AUTH_401, 403: AUTH_403, 422: [SearchError.INVALID_SEARCH]}),
)
async def search_products(
    request: Request,
    q: SearchText,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[
        Text | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    in_stock: Annotated[bool, Query(description="only products available now")] = False,
    min_price: Price = None,
    max_price: Price = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Search active products by words, typos, SKU and meaning, best match first.

    An exact SKU comes first; then products ranked by reciprocal-rank fusion of full-text,
    trigram and (once the model has indexed the catalog) semantic matches. Answers carry an
    ETag: send it back in `If-None-Match` for a 304 while the results are unchanged.
    """
    await optional_principal(request)  # no token needed, but one that is sent must be good
    service: CatalogService = request.app.state.catalog
    filters = Filters(
        in_stock=in_stock,
        min_price=min_price if min_price is not None else 0,
        max_price=max_price if max_price is not None else MAX_AMOUNT,
    )
    page = await service.search.search(q, filters=filters, cursor=cursor, limit=limit)
    return _answer(page, if_none_match)


def _answer(page: SearchPage, if_none_match: str | None) -> Response:
    """The page as JSON with an ETag of its body; 304 when ``If-None-Match`` names it."""
    body = _body(page)
    etag = f'"s{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
    if if_none_match is not None and etag in if_none_match:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/json", headers={"ETag": etag})


@router.get(
    "/products/{product_id}/similar",
    response_model=SearchResults,
    responses={304: {"description": "Not modified: the ETag in If-None-Match is current"}},
    openapi_extra=problems({401: AUTH_401, 403: AUTH_403, 404: [ErrorCode.PRODUCT_NOT_FOUND]}),
)
async def similar_products(
    request: Request,
    product_id: ResourceId,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 10,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Active products nearest in meaning to this one, most similar first.

    Scores are cosine similarities of the products' embeddings; the list is empty until the
    product has been indexed (seconds after it was created or renamed).
    """
    await optional_principal(request)
    service: CatalogService = request.app.state.catalog
    page = await service.search.similar(product_id, limit=limit)
    return _answer(page, if_none_match)
