"""Which requests the held routes take before FastAPI's handler, and which they leave to it
(so that invalid input is refused by FastAPI's own validation, naming the field)."""

from __future__ import annotations

from typing import Any

import pytest

from mercato.orders.realtime import follow, read
from mercato.orders.realtime.longpoll import OrderLongPoll

ORDER = "0190f1c2-3b4a-7d6e-8f90-123456789abc"


def scope(
    query: str = "", *, order_id: str = ORDER, headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "query_string": query.encode(),
        "headers": headers or [],
        "path_params": {"order_id": order_id},
    }


def test_a_positive_wait_on_a_valid_request_is_held() -> None:
    held = read.long_poll_of(scope("wait=2.5"))

    assert isinstance(held, OrderLongPoll)
    assert (held.order_id, held.seconds) == (ORDER, 2.5)


def test_the_last_wait_given_counts_as_fastapi_reads_it() -> None:
    held = read.long_poll_of(scope("wait=x&wait=7"))

    assert isinstance(held, OrderLongPoll)
    assert held.seconds == 7
    assert read.long_poll_of(scope("wait=7&wait=x")) is None


@pytest.mark.parametrize("query", ["", "limit=3", "wait=0", "wait=0.0", "await=5"])
def test_a_read_without_a_positive_wait_goes_to_the_endpoint(query: str) -> None:
    assert read.long_poll_of(scope(query)) is None


@pytest.mark.parametrize("wait", ["x", "-1", "nan", "inf", "", "%D9%A3", "1e999"])
def test_an_invalid_wait_goes_to_the_endpoint_which_refuses_it(wait: str) -> None:
    assert read.long_poll_of(scope(f"wait={wait}")) is None


@pytest.mark.parametrize("order_id", ["a" * 37, "ab\x00cd", "ab\ncd", ""])
def test_an_invalid_order_id_goes_to_the_endpoint(order_id: str) -> None:
    assert read.long_poll_of(scope("wait=5", order_id=order_id)) is None
    assert follow._order_stream(scope(order_id=order_id)) is None


def test_an_over_long_if_none_match_goes_to_the_endpoint() -> None:
    long_tag = [(b"if-none-match", b'"1",' * 100)]

    assert read.long_poll_of(scope("wait=5", headers=long_tag)) is None
    assert read.long_poll_of(scope("wait=5", headers=[(b"if-none-match", b'"1"')])) is not None


def test_a_valid_stream_request_is_held() -> None:
    assert follow._order_stream(scope()) is follow.ORDER_EVENTS
    assert follow._all_orders_stream(scope()) is follow.ALL_ORDER_EVENTS
