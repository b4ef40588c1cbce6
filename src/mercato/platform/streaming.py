"""Held HTTP responses in plain ASGI: Server-Sent Events streams and long polls.

Both are :class:`~mercato.platform.notify.Subscriber`\\ s of the process's notifier, written
without FastAPI's request machinery or ``StreamingResponse`` because each held connection costs
memory for as long as it is held: here an idle one is the request's own coroutine waiting on
``receive()`` (which is how it learns that the client went away) plus one small object. Nothing
else runs for it until there is something to write: the notifier calls :meth:`deliver`,
:meth:`beat` or :meth:`end`, which queue bytes and start a short-lived writer task.

A stream whose client stops reading is dropped: it may fall at most ``max_queue`` writes behind,
and a single write may block for at most ``write_timeout`` seconds; after that its request ends
without completing the response, which makes the server close the connection. Nobody else is
held back meanwhile, because the notifier never waits for a follower.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from mercato.kernel.errors import AuthenticationFailed, InvalidValue
from mercato.platform.metrics import LONG_LIVED
from mercato.platform.notify import Change
from mercato.platform.security import Authenticator, AuthError, Principal

log = logging.getLogger("mercato.streaming")

HEARTBEAT = b": keep-alive\n\n"
RECHECK_BEATS = 4  # streams that may end with their account ask about it every 4th heartbeat
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell nginx-style proxies not to buffer the stream
]


# -- reading requests ------------------------------------------------------------------------


def header(scope: Scope, name: bytes) -> str | None:
    """A request header (lower-case name), decoded; None when absent."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def query(scope: Scope) -> dict[str, list[str]]:
    """The query string's parameters."""
    raw: bytes = scope.get("query_string", b"")
    return parse_qs(raw.decode("latin-1"), keep_blank_values=True) if raw else {}


async def authenticate(
    scope: Scope, auth: Authenticator, *, params: dict[str, list[str]] | None = None
) -> Principal:
    """The caller from ``Authorization: Bearer``, or (when ``params`` is given) ``access_token``,
    checked against the account by the application's :class:`Authenticator`.

    Browsers' ``EventSource`` cannot send headers, so event streams also accept the token as a
    query parameter (RFC 6750, section 2.3). mercato does not log query strings.
    """
    value = header(scope, b"authorization")
    if value is not None:
        return await auth.require(value)
    given = (params or {}).get("access_token")
    if given:
        return await auth.verify(given[-1])
    raise AuthenticationFailed(AuthError.UNAUTHENTICATED, "a bearer token is required")


_TAG = r'(?:W/)?"?[0-9]{1,12}"?'
VERSION_TAG = re.compile(r'(?:W/)?"?([0-9]{1,12})"?')
"""A version as an entity tag: ``"3"``, weakly ``W/"3"``, or bare ``3``; at most 12 digits."""

IF_MATCH_PATTERN = rf"^(?:\*|{_TAG})$"
"""What ``If-Match`` may hold (the OpenAPI document's pattern): ``*`` or one version tag."""

IF_NONE_MATCH_PATTERN = rf"^(?:\*|{_TAG}(?:[ \t]*,[ \t]*{_TAG})*)$"
"""What ``If-None-Match`` may hold, for the OpenAPI document: ``*`` or a list of version tags."""


def parse_if_none_match(value: str | None) -> frozenset[int] | None:
    """The versions named by ``If-None-Match`` (``"3"``, ``W/"3"``, lists); None if absent.

    ``*`` matches every version and comes back as an empty set.
    """
    if value is None:
        return None
    if value.strip() == "*":
        return frozenset()
    versions = set()
    for part in value.split(","):
        tag = VERSION_TAG.fullmatch(part.strip(" \t"))
        if tag is None:
            raise InvalidValue(
                "invalid_if_none_match",
                'If-None-Match must be version tags like "3" (or *)',
                field="If-None-Match",
            )
        versions.add(int(tag.group(1)))
    return frozenset(versions)


def matches(tags: frozenset[int] | None, version: int) -> bool:
    """Whether ``If-None-Match`` tags match the current version (so the answer is 304)."""
    return tags is not None and (not tags or version in tags)


def parse_last_event_id(value: str | None, *, field: str = "Last-Event-ID") -> int | None:
    """The event id a reconnecting client saw last; None if absent or empty.

    ``field`` names where it came from (the header, or a query parameter) in a refusal.
    """
    if value is None or not value.strip():
        return None
    cleaned = value.strip()
    if not _digits(cleaned) or len(cleaned) > 18:
        raise InvalidValue(
            "invalid_last_event_id",
            f"{field} must be the id of an event from this stream",
            field=field,
        )
    return int(cleaned)


def _digits(text: str) -> bool:
    # isdigit alone accepts "²", which a latin-1 header can carry and int() refuses
    return text.isascii() and text.isdigit()


def parse_wait(value: str) -> float | None:
    """Seconds from a ``wait`` parameter; None unless it is a finite number >= 0."""
    if not value.isascii():
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


# -- writing problems ------------------------------------------------------------------------


async def send_error(scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
    """Answer with the application's own handler for this error (problem+json)."""
    handlers: dict[Any, Any] = getattr(scope.get("app"), "exception_handlers", {})
    handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
    if handler is None:
        raise exc
    response: Response = await handler(Request(scope, receive), exc)
    await response(scope, receive, send)


# -- held responses ----------------------------------------------------------------------------


class Held:
    """A response held open by its request's coroutine until it completes or the client leaves."""

    __slots__ = ("_aborted", "_task")

    def __init__(self) -> None:
        self._task: asyncio.Task[Any] | None = None
        self._aborted = False

    async def hold(self, receive: Receive) -> None:
        """Wait until the response is complete or the client disconnects (or :meth:`abort`)."""
        self._task = asyncio.current_task()
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except asyncio.CancelledError:
            if not self._aborted or self._task is None:
                raise
            self._task.uncancel()  # returning without completing makes the server hang up

    def abort(self) -> None:
        """Stop holding at once, leaving the response incomplete."""
        if not self._aborted and self._task is not None:
            self._aborted = True
            self._task.cancel()

    def deliver(self, change: Change) -> None:
        """The notifier's delivery (see the subclasses)."""

    def beat(self) -> None:
        """Nothing to do by default (long polls have no heartbeat)."""

    def end(self) -> None:
        """The notifier's shutdown (see the subclasses)."""


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


Answer = Callable[[str], Awaitable[Response]]


class LongPoll(Held):
    """A request answered when its resource changes, at its deadline, or at shutdown.

    It is registered with the notifier *before* the resource is read, so that nothing committed
    after the read can be missed; what is delivered until :meth:`wait` arms it (with the version
    read) is kept and judged then. ``answer`` builds the response for the reason it is given
    (``changed``, ``timeout`` or ``shutdown``).
    """

    __slots__ = ("_accept", "_answer", "_early", "_responder", "_scope", "_send")

    def __init__(self, scope: Scope, send: Send, *, answer: Answer) -> None:
        super().__init__()
        scope.setdefault("state", {})[LONG_LIVED] = True  # its wait is not latency (metrics.py)
        self._scope = scope
        self._send = send
        self._answer = answer
        self._accept: Callable[[Change], bool] | None = None
        self._early: list[Change | None] = []  # before arming: changes, None for shutdown
        self._responder: asyncio.Task[None] | None = None

    def deliver(self, change: Change) -> None:
        """A change of the followed resource: answer if the client has not seen it."""
        if self._accept is None:
            self._early.append(change)
        elif self._accept(change):
            self._respond("changed")

    def end(self) -> None:
        """The server is shutting down: answer now."""
        if self._accept is None:
            self._early.append(None)
        else:
            self._respond("shutdown")

    async def wait(
        self, receive: Receive, seconds: float, *, accept: Callable[[Change], bool]
    ) -> None:
        """Hold the request for at most ``seconds``; ``accept`` says which changes are news."""
        self._accept = accept
        early, self._early = self._early, []
        if None in early:
            self._respond("shutdown")
        elif any(accept(change) for change in early if change is not None):
            self._respond("changed")
        timer = asyncio.get_running_loop().call_later(seconds, self._respond, "timeout")
        try:
            await self.hold(receive)
        finally:
            timer.cancel()
            if self._responder is not None:
                with contextlib.suppress(Exception):
                    await self._responder  # it finishes quickly; the client may be gone

    def _respond(self, reason: str) -> None:
        if self._responder is None:
            self._responder = asyncio.create_task(self._run(reason))

    async def _run(self, reason: str) -> None:
        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        try:
            try:
                response = await self._answer(reason)
            except Exception as exc:
                await send_error(self._scope, nothing, self._send, exc)
                return
            await response(self._scope, nothing, self._send)
        except Exception:
            log.exception("long poll answer failed")
            self.abort()
