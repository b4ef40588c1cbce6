"""Server-Sent Events streams in plain ASGI (a held response, see :mod:`mercato.platform.held`).

The notifier calls :meth:`EventStream.deliver`, :meth:`~EventStream.beat` or
:meth:`~EventStream.end`, which queue bytes and start a short-lived writer task.

A stream whose client stops reading is dropped: it may fall at most ``max_queue`` writes behind,
and a single write may block for at most ``write_timeout`` seconds; after that its request ends
without completing the response, which makes the server close the connection. Nobody else is
held back meanwhile, because the notifier never waits for a follower.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

import orjson
from starlette.types import Receive, Send

from mercato.kernel.errors import InvalidValue
from mercato.platform.error_codes import ErrorCode
from mercato.platform.event_log import Change
from mercato.platform.held import Held, digits

log = logging.getLogger("mercato.streaming")

HEARTBEAT = b": keep-alive\n\n"
RECHECK_BEATS = 4  # streams that may end with their account ask about it every 4th heartbeat
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell nginx-style proxies not to buffer the stream
]


def parse_last_event_id(value: str | None, *, field: str = "Last-Event-ID") -> int | None:
    """The event id a reconnecting client saw last; None if absent or empty.

    ``field`` names where it came from (the header, or a query parameter) in a refusal.
    """
    if value is None or not value.strip():
        return None
    cleaned = value.strip()
    if not digits(cleaned) or len(cleaned) > 18:
        raise InvalidValue(
            ErrorCode.INVALID_LAST_EVENT_ID,
            f"{field} must be the id of an event from this stream",
            field=field,
        )
    return int(cleaned)


class EventStream(Held):
    """One ``text/event-stream`` response: replayed history, then live events, heartbeats.

    Each event is written as ``id: <outbox seq>``, ``event: <type>``, ``data: <JSON>``, so a
    client that reconnects with ``Last-Event-ID`` resumes exactly after the last one it saw.
    Events arriving while the history is replayed are queued and sent after it, skipping any the
    history already contained (by ``seq``).
    """

    __slots__ = (
        "_accept",
        "_beats",
        "_checking",
        "_closing",
        "_done",
        "_ends_after",
        "_expires_at",
        "_live",
        "_queue",
        "_recheck",
        "_retry_ms",
        "_send",
        "_writer",
        "last_seq",
        "max_queue",
        "started",
        "write_timeout",
    )

    def __init__(
        self,
        send: Send,
        *,
        after: int,
        retry_ms: int,
        accept: Callable[[Change], bool] = lambda change: True,
        ends_after: Callable[[Change], bool] = lambda change: False,
        expires_at: float | None = None,
        recheck: Callable[[], Awaitable[bool]] | None = None,
        max_queue: int = 256,
        write_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self._recheck = recheck  # still allowed? asked before events and every RECHECK_BEATS
        self._beats = 0
        self._checking: asyncio.Task[None] | None = None
        self._send = send
        self.last_seq = after
        self._retry_ms = retry_ms
        self._accept = accept
        self._ends_after = ends_after
        self._expires_at = expires_at
        self.max_queue = max_queue
        self.write_timeout = write_timeout
        self._queue: list[Change | bytes] = []
        self._writer: asyncio.Task[None] | None = None
        self._live = False
        self._closing = False
        self._done = False
        self.started = False

    async def open(self) -> None:
        """Start the response and tell the client how soon to come back after a drop."""
        self.started = True
        await self._send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await self._write(b"retry: %d\n\n" % self._retry_ms)

    async def replay(self, changes: list[Change]) -> bool:
        """Write history (before going live); False once the stream has ended."""
        chunk = self._render(changes)
        if chunk:
            await self._write(chunk)
        if self._closing:
            await self._end_now()
        return not self._closing

    async def close(self, reason: str) -> None:
        """End a stream that is not live yet (e.g. its history could not be read)."""
        self.finish(reason)
        await self._end_now()

    async def _end_now(self) -> None:
        # before going live: write what is queued (a reconnect event) and complete the response
        if not self._done:
            self._done = True
            rest, self._queue = self._queue, []
            await self._write(self._render(rest), more=False)

    def go_live(self) -> None:
        """History is written: from now on deliveries are written as they come."""
        self._live = True
        self._poke()

    def finish(self, reason: str | None = None) -> None:
        """End the stream after what is queued (with a reconnect event when ``reason``)."""
        if self._closing:
            return
        if reason is not None:
            retry = random.randint(min(100, self._retry_ms), max(100, self._retry_ms))
            event = orjson.dumps({"reason": reason})
            self._queue.append(b"event: reconnect\ndata: %s\nretry: %d\n\n" % (event, retry))
        self._closing = True
        self._poke()

    # the notifier's calls

    def deliver(self, change: Change) -> None:
        """Queue an event this stream follows (from the notifier)."""
        if self._closing or change.seq <= self.last_seq or not self._accept(change):
            return
        if len(self._queue) >= self.max_queue:
            log.info(
                "event stream fell %d events behind; asking its client to resume", self.max_queue
            )
            self._queue.clear()
            self.finish("lagging")
            return
        self._queue.append(change)
        self._poke()

    def beat(self) -> None:
        """Queue a heartbeat comment; end the stream once its token has expired."""
        self._beats += 1
        if self._expires_at is not None and time.time() >= self._expires_at:
            self.finish("token_expired")
        elif not self._queue and not self._closing:
            self._queue.append(HEARTBEAT)
            self._poke()
        if self._recheck is not None and self._beats % RECHECK_BEATS == 0:
            self._checking = asyncio.create_task(self._still_allowed(self._recheck))

    async def _still_allowed(self, recheck: Callable[[], Awaitable[bool]]) -> None:
        if not await self._may_continue(recheck):
            self.finish("account_inactive")

    @staticmethod
    async def _may_continue(recheck: Callable[[], Awaitable[bool]]) -> bool:
        try:
            return await recheck()
        except Exception:
            return True  # the database is away: keep the stream, ask again next time

    async def _events_allowed(self) -> bool:
        """Whether what is queued may be written: True unless it holds events for an account
        that may no longer follow them."""
        if self._recheck is None or self._closing:
            return True
        if all(isinstance(item, bytes) for item in self._queue):
            return True
        return await self._may_continue(self._recheck)

    def end(self) -> None:
        """The server is shutting down: ask the client to reconnect (to another replica)."""
        self.finish("shutdown")

    # writing

    def _render(self, items: list[Change] | list[Change | bytes]) -> bytes:
        parts = []
        for item in items:
            if isinstance(item, bytes):
                parts.append(item)
                continue
            if item.seq <= self.last_seq or not self._accept(item):
                continue
            parts.append(
                b"id: %d\nevent: %s\ndata: %s\n\n" % (item.seq, item.event_type.encode(), item.data)
            )
            self.last_seq = item.seq
            if self._ends_after(item):
                self._closing = True
                break
        return b"".join(parts)

    async def _write(self, body: bytes, *, more: bool = True) -> None:
        async with asyncio.timeout(self.write_timeout):
            await self._send({"type": "http.response.body", "body": body, "more_body": more})

    def _poke(self) -> None:
        if self._live and not self._done and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._queue:
                # no event reaches an account past its deactivation (plus the cache bound of
                # Authenticator, one second), however rarely an idle stream asks
                if not await self._events_allowed():
                    self._queue.clear()
                    self.finish("account_inactive")
                    continue
                batch, self._queue = self._queue, []
                chunk = self._render(batch)
                if chunk:
                    await self._write(chunk)
            if self._closing and not self._done:
                self._done = True
                await self._write(b"", more=False)
        except TimeoutError:
            log.warning(
                "event stream client stopped reading for %.0f s; dropping it", self.write_timeout
            )
            self.abort()
        except Exception:
            log.exception("event stream write failed")
            self.abort()

    async def hold(self, receive: Receive) -> None:
        """Wait until the stream ends or its client goes away; stop writing then."""
        try:
            await super().hold(receive)
        finally:
            self._done = True
            if self._writer is not None and not self._writer.done():
                self._writer.cancel()
