"""Held responses against a fake ASGI server: ordering, endings, and slow consumers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.responses import Response

from mercato.kernel.errors import InvalidValue
from mercato.platform.event_log import Change
from mercato.platform.held import LongPoll, matches, parse_if_none_match
from mercato.platform.streaming import HEARTBEAT, EventStream, parse_last_event_id

pytestmark = pytest.mark.anyio


def change(seq: int, event_type: str = "OrderConfirmed") -> Change:
    return Change(seq, "order", "o1", event_type, {"version": seq}, b'{"v":%d}' % seq)


class FakeServer:
    """ASGI send/receive the way a server behaves: receive returns once the response is done."""

    def __init__(self, *, blocked: bool = False) -> None:
        self.messages: list[dict[str, Any]] = []
        self.finished = asyncio.Event()
        self.gone = asyncio.Event()
        self.writable = asyncio.Event()
        if not blocked:
            self.writable.set()
        self._requested = False

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and self.messages:
            await self.writable.wait()  # a client that does not read blocks the server's writes
        self.messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.finished.set()

    async def receive(self) -> dict[str, Any]:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        done = asyncio.ensure_future(self.finished.wait())
        left = asyncio.ensure_future(self.gone.wait())
        await asyncio.wait({done, left}, return_when=asyncio.FIRST_COMPLETED)
        done.cancel()
        left.cancel()
        return {"type": "http.disconnect"}

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages if m["type"].endswith("body"))


async def test_a_stream_writes_history_then_live_events_without_repeating_any() -> None:
    server = FakeServer()
    stream = EventStream(server.send, after=1, retry_ms=1500)
    await stream.open()
    stream.deliver(change(3))  # arrives while history is written: held until it is done
    await stream.replay([change(2), change(3)])
    stream.go_live()
    stream.deliver(change(3))
    stream.deliver(change(4))
    stream.finish()
    await asyncio.wait_for(stream.hold(server.receive), 1)

    assert server.messages[0]["status"] == 200
    assert server.body == (
        b"retry: 1500\n\n"
        b'id: 2\nevent: OrderConfirmed\ndata: {"v":2}\n\n'
        b'id: 3\nevent: OrderConfirmed\ndata: {"v":3}\n\n'
        b'id: 4\nevent: OrderConfirmed\ndata: {"v":4}\n\n'
    )
    assert server.finished.is_set()


async def test_a_stream_ends_after_a_final_event_and_at_shutdown_asks_to_reconnect() -> None:
    final = FakeServer()
    stream = EventStream(
        final.send, after=0, retry_ms=1000, ends_after=lambda c: c.event_type == "OrderDelivered"
    )
    await stream.open()
    stream.go_live()
    stream.deliver(change(5, "OrderDelivered"))
    stream.deliver(change(6))
    await asyncio.wait_for(stream.hold(final.receive), 1)
    assert final.body.endswith(b'id: 5\nevent: OrderDelivered\ndata: {"v":5}\n\n')

    draining = FakeServer()
    stream = EventStream(draining.send, after=0, retry_ms=1000)
    await stream.open()
    stream.go_live()
    stream.end()
    await asyncio.wait_for(stream.hold(draining.receive), 1)
    assert b'event: reconnect\ndata: {"reason":"shutdown"}\nretry: ' in draining.body
    assert draining.finished.is_set()


async def test_a_stream_that_falls_behind_while_replaying_asks_its_client_to_resume() -> None:
    server = FakeServer()
    stream = EventStream(server.send, after=0, retry_ms=1000, max_queue=2)
    await stream.open()
    for seq in range(10, 15):  # live events pile up while history is written
        stream.deliver(change(seq))

    assert not await stream.replay([change(1), change(2)])

    assert server.finished.is_set()
    assert b'event: reconnect\ndata: {"reason":"lagging"}' in server.body
    assert b"id: 2\n" in server.body
    assert b"id: 10\n" not in server.body


async def test_a_stream_filters_events_and_sends_heartbeats_when_idle() -> None:
    server = FakeServer()
    stream = EventStream(
        server.send, after=0, retry_ms=1000, accept=lambda c: c.event_type == "OrderPlaced"
    )
    await stream.open()
    stream.go_live()
    stream.deliver(change(1, "OrderConfirmed"))
    stream.beat()
    stream.deliver(change(2, "OrderPlaced"))
    stream.finish()
    await asyncio.wait_for(stream.hold(server.receive), 1)

    assert HEARTBEAT in server.body
    assert b"id: 1\n" not in server.body
    assert b"id: 2\nevent: OrderPlaced\n" in server.body


async def test_a_stream_whose_token_expired_ends_at_its_next_heartbeat() -> None:
    server = FakeServer()
    stream = EventStream(server.send, after=0, retry_ms=1000, expires_at=1.0)
    await stream.open()
    stream.go_live()
    stream.beat()
    await asyncio.wait_for(stream.hold(server.receive), 1)

    assert b'data: {"reason":"token_expired"}' in server.body


async def test_a_client_that_stops_reading_is_dropped_and_its_request_returns() -> None:
    server = FakeServer(blocked=True)
    stream = EventStream(server.send, after=0, retry_ms=1000, write_timeout=0.2, max_queue=4)
    server.writable.set()
    await stream.open()
    server.writable.clear()
    stream.go_live()
    for seq in range(1, 20):  # more than it may fall behind: it is asked to leave, then dropped
        stream.deliver(change(seq))

    await asyncio.wait_for(stream.hold(server.receive), 2)

    assert not server.finished.is_set()  # the response was left incomplete: the server hangs up
    assert asyncio.current_task() is not None
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def test_a_stream_stops_writing_when_its_client_leaves() -> None:
    server = FakeServer()
    stream = EventStream(server.send, after=0, retry_ms=1000)
    await stream.open()
    stream.go_live()
    holding = asyncio.create_task(stream.hold(server.receive))
    await asyncio.sleep(0)
    server.gone.set()
    await asyncio.wait_for(holding, 1)
    stream.deliver(change(1))
    await asyncio.sleep(0.01)

    assert b"id: 1" not in server.body


def answer_with(status: int) -> Any:
    async def answer(reason: str) -> Response:
        return Response(reason.encode(), status)

    return answer


async def test_a_long_poll_answers_on_a_newer_change_only() -> None:
    server = FakeServer()
    poll = LongPoll({"type": "http"}, server.send, answer=answer_with(200))
    poll.deliver(change(3))  # before it is armed: judged when it is
    waiting = asyncio.create_task(poll.wait(server.receive, 5, accept=lambda c: c.seq > 3))
    await asyncio.sleep(0.05)
    assert not server.finished.is_set()

    poll.deliver(change(4))
    await asyncio.wait_for(waiting, 1)

    assert server.body == b"changed"


async def test_a_long_poll_times_out_and_answers_at_shutdown() -> None:
    server = FakeServer()
    poll = LongPoll({"type": "http"}, server.send, answer=answer_with(304))
    await asyncio.wait_for(poll.wait(server.receive, 0.05, accept=lambda c: True), 1)
    assert server.body == b"timeout"

    draining = FakeServer()
    poll = LongPoll({"type": "http"}, draining.send, answer=answer_with(304))
    poll.end()  # before it is armed
    await asyncio.wait_for(poll.wait(draining.receive, 5, accept=lambda c: True), 1)
    assert draining.body == b"shutdown"


def test_request_values_are_parsed_strictly() -> None:
    assert parse_if_none_match(None) is None
    assert parse_if_none_match('"3"') == {3}
    assert parse_if_none_match('W/"3", "4"') == {3, 4}
    assert parse_if_none_match("*") == frozenset()
    assert matches(frozenset(), 7)
    assert matches(frozenset({7}), 7)
    assert not matches(None, 7)
    assert not matches(frozenset({6}), 7)
    for bad in ('"x"', 'abc"', '"-1"', '"' + "9" * 13 + '"', '"3",,', '"²"'):
        with pytest.raises(InvalidValue) as refused:
            parse_if_none_match(bad)
        assert refused.value.field == "If-None-Match"

    assert parse_last_event_id(None) is None
    assert parse_last_event_id(" 42 ") == 42
    for bad in ("x", "-1", "1.5", "9" * 19, "²"):
        with pytest.raises(InvalidValue) as refused:
            parse_last_event_id(bad)
        assert refused.value.field == "Last-Event-ID"
