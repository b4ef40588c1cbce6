"""The request middleware: labels for requests that end unusually, and its batches."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
import structlog

from mercato.platform import logging as mlog
from mercato.platform.instrumentation import BATCH, InstrumentationMiddleware, RouteTable
from mercato.platform.metrics import Metrics

OPENAPI = {
    "paths": {
        "/v1/customers/me": {"get": {}},
        "/v1/customers/{customer_id}": {"get": {}},
        "/v1/orders/{order_id}/place": {"post": {}},
    }
}


def scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": [], "state": {}}


def test_requests_answered_before_routing_get_their_template_or_one_unmatched_label() -> None:
    table = RouteTable(lambda: OPENAPI)
    assert table.template(None, "/v1/orders/abc/place", "POST") == "/v1/orders/{order_id}/place"
    assert table.template(None, "/v1/customers/me", "GET") == "/v1/customers/me"
    assert table.template(None, "/v1/customers/42", "GET") == "/v1/customers/{customer_id}"
    assert table.template(None, "/v1/orders/x/place", "DELETE") == "/v1/orders/{order_id}/place"
    assert table.template(None, "/v1/orders/x/place/more", "GET") == "<unmatched>"
    assert table.template(None, "/wp-login.php", "GET") == "<unmatched>"


def test_a_request_whose_client_left_before_the_answer_is_a_499_not_a_500() -> None:
    metrics = Metrics()

    async def abandoned(scope: Any, receive: Any, send: Any) -> None:
        raise asyncio.CancelledError

    async def ignore(message: Any) -> None:
        return None

    middleware = InstrumentationMiddleware(
        abandoned, openapi=lambda: OPENAPI, metrics=metrics, access_log=False
    )
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(middleware(scope("POST", "/v1/orders/abc/place"), ignore, ignore))
    metrics.flush()
    labels = ("POST", "/v1/orders/{order_id}/place")
    assert metrics.requests.labels(*labels, "499")._value.get() == 1
    assert metrics.requests.labels(*labels, "500")._value.get() == 0
    assert metrics.in_flight._value.get() == 0


ROUTE = type("Route", (), {"path_format": "/v1/products/{product_id}"})()


async def product(scope: Any, receive: Any, send: Any) -> None:
    scope["route"] = ROUTE
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def serve(middleware: InstrumentationMiddleware, count: int, first: int = 0) -> None:
    async def ignore(message: Any) -> None:
        return None

    for n in range(first, first + count):
        request = scope("GET", f"/v1/products/p-{n}")
        request["headers"] = [(b"x-request-id", f"req-{n}".encode())]
        await middleware(request, ignore, ignore)


def test_a_scrape_counts_every_answered_request_before_its_batch_is_full() -> None:
    metrics = Metrics()
    middleware = InstrumentationMiddleware(
        product, openapi=lambda: OPENAPI, metrics=metrics, access_log=False
    )
    asyncio.run(serve(middleware, 3))
    assert len(middleware.journal.records) == 3  # answered, not yet counted
    metrics.flush()  # what every scrape and the once-a-second flush do first
    labels = ("GET", "/v1/products/{product_id}")
    assert metrics.requests.labels(*labels, "200")._value.get() == 3
    assert metrics.duration.labels(*labels)._sum.get() > 0
    assert metrics.in_flight._value.get() == 0
    assert middleware.journal.records == []


def test_access_lines_are_made_a_batch_at_a_time_in_the_order_requests_ended() -> None:
    stream = io.StringIO()
    mlog.configure(level="INFO", fmt="json", stream=stream, write_interval=60)
    try:
        metrics = Metrics()
        middleware = InstrumentationMiddleware(
            product, openapi=lambda: OPENAPI, metrics=metrics, count_requests=False
        )
        writer = mlog._writer
        assert writer is not None
        asyncio.run(serve(middleware, BATCH - 1))
        assert len(writer.pending) == 0  # per request only a tuple is noted
        asyncio.run(serve(middleware, 1, first=BATCH - 1))
        assert len(writer.pending) == BATCH  # the full batch became lines at once
        asyncio.run(serve(middleware, 5, first=BATCH))
        metrics.flush()  # the tail of a quiet server: settled at the next flush
        assert len(writer.pending) == BATCH + 5
    finally:
        mlog.shutdown()
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == [f"req-{n}" for n in range(BATCH + 5)]
    assert {line["route"] for line in lines} == {"/v1/products/{product_id}"}
    assert lines[0]["path"] == "/v1/products/p-0"
    assert lines[0]["timestamp"] <= lines[-1]["timestamp"]
