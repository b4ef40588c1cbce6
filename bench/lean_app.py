"""The lean baseline for order placement: Starlette + raw asyncpg placing a simple order.

One transaction: three guarded stock updates (in product-id order, all-or-nothing), the order,
its three lines and one outbox row, each statement its own round trip as a straightforward
handler would send them. No authentication, idempotency, reservation or payment: the cheapest
reasonable way to take an order, which mercato's extra work is measured against.

    POST /orders  {"customer_id": "...", "lines": [["<product id>", <quantity>], ...]}
    -> 201 {"id": "..."} | 409 {"error": "out_of_stock"}
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

RESERVE = (
    "UPDATE catalog_products SET available = available - $2, sold = sold + $2"
    " WHERE id = $1 AND active AND available >= $2"
    " RETURNING sku, name, price_amount, currency, weight_grams"
)
ORDER = (
    "INSERT INTO orders_orders (id, customer_id, status, currency, subtotal, discount, shipping,"
    " tax, total, discount_percent, shipping_address, billing_address, created_at, updated_at,"
    " placed_at, version)"
    " VALUES ($1, $2, 'placed', $3, $4, 0, 0, 0, $4, 0, $5, $5, now(), now(), now(), 1)"
)
LINE = (
    "INSERT INTO orders_lines (order_id, product_id, position, sku, name, unit_price, quantity,"
    " weight_grams) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
OUTBOX = (
    "INSERT INTO platform_outbox (aggregate_type, aggregate_id, event_type, payload, occurred_at)"
    " VALUES ('order', $1, 'OrderPlaced', $2, now())"
)
ADDRESS = '{"street":"Hauptstrasse 1","city":"Berlin","postal_code":"10115","country":"DE"}'


class OutOfStock(Exception):
    pass


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    size = int(os.environ.get("MERCATO_DATABASE_POOL_SIZE", "10"))
    app.state.pool = await asyncpg.create_pool(
        os.environ["MERCATO_DATABASE_URL"], min_size=1, max_size=size
    )
    yield
    await app.state.pool.close()


async def place(request: Request) -> Response:
    body = orjson.loads(await request.body())
    lines = sorted(body["lines"])  # product-id order: no deadlock between two orders
    order_id = "lean-" + uuid.uuid4().hex[:31]
    try:
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            priced = []
            for product_id, quantity in lines:
                row = await conn.fetchrow(RESERVE, product_id, quantity)
                if row is None:
                    raise OutOfStock(product_id)
                priced.append((product_id, quantity, row))
            total = sum(quantity * row["price_amount"] for _, quantity, row in priced)
            await conn.execute(ORDER, order_id, body["customer_id"], "EUR", total, ADDRESS)
            for position, (product_id, quantity, row) in enumerate(priced):
                await conn.execute(
                    LINE, order_id, product_id, position, row["sku"], row["name"],
                    row["price_amount"], quantity, row["weight_grams"],
                )  # fmt: skip
            event = {"order_id": order_id, "total": total, "currency": "EUR"}
            await conn.execute(OUTBOX, order_id, orjson.dumps(event).decode())
    except OutOfStock as refused:
        return Response(
            orjson.dumps({"error": "out_of_stock", "product_id": str(refused)}),
            status_code=409,
            media_type="application/json",
        )
    return Response(orjson.dumps({"id": order_id}), status_code=201, media_type="application/json")


async def ready(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(routes=[Route("/orders", place, methods=["POST"]), Route("/ready", ready)],
                lifespan=lifespan)  # fmt: skip
