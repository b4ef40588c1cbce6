"""The baseline for the product read benchmark: Starlette + asyncpg reading the same row.

No validation, no auth, no models: the cheapest reasonable way to serve the same JSON.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

QUERY = (
    "SELECT id, sku, name, description, price_amount, currency, weight_grams, active, available,"
    " version FROM catalog_products WHERE id = $1"
)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        os.environ["MERCATO_DATABASE_URL"], min_size=1, max_size=10
    )
    yield
    await app.state.pool.close()


async def product(request: Request) -> Response:
    async with request.app.state.pool.acquire() as conn:
        row = await conn.fetchrow(QUERY, request.path_params["product_id"])
    if row is None:
        return Response(status_code=404)
    body = dict(row)
    body["price"] = {"amount": body.pop("price_amount"), "currency": body.pop("currency")}
    return Response(orjson.dumps(body), media_type="application/json")


app = Starlette(routes=[Route("/products/{product_id}", product)], lifespan=lifespan)
