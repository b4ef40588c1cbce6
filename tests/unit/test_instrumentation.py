"""The request middleware's labels for requests that end unusually."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mercato.platform.instrumentation import InstrumentationMiddleware, RouteTable
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
    assert table.template(scope("POST", "/v1/orders/abc/place")) == "/v1/orders/{order_id}/place"
    assert table.template(scope("GET", "/v1/customers/me")) == "/v1/customers/me"
    assert table.template(scope("GET", "/v1/customers/42")) == "/v1/customers/{customer_id}"
    assert table.template(scope("DELETE", "/v1/orders/x/place")) == "/v1/orders/{order_id}/place"
    assert table.template(scope("GET", "/v1/orders/x/place/more")) == "<unmatched>"
    assert table.template(scope("GET", "/wp-login.php")) == "<unmatched>"


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
