"""Held HTTP responses in plain ASGI, and what they read from a request.

A held response is a :class:`~mercato.platform.notify.Subscriber` of the process's notifier,
written without FastAPI's request machinery because each held connection costs memory for as
long as it is held (:mod:`mercato.platform.routing`): here an idle one is the request's own
coroutine waiting on ``receive()`` (which is how it learns that the client went away) plus one
small object. Nothing else runs for it until there is something to write: the notifier calls
``deliver``, ``beat`` or ``end``. :class:`LongPoll` is one; the event stream is in
:mod:`mercato.platform.streaming`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from mercato.kernel.errors import AuthenticationFailed, InvalidValue
from mercato.platform.error_codes import ErrorCode
from mercato.platform.event_log import Change
from mercato.platform.http import header
from mercato.platform.metrics import LONG_LIVED
from mercato.platform.problems import send_error
from mercato.platform.security import Authenticator, Principal

log = logging.getLogger("mercato.streaming")


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
    raise AuthenticationFailed(ErrorCode.UNAUTHENTICATED, "a bearer token is required")


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
                ErrorCode.INVALID_IF_NONE_MATCH,
                'If-None-Match must be version tags like "3" (or *)',
                field="If-None-Match",
            )
        versions.add(int(tag.group(1)))
    return frozenset(versions)


def matches(tags: frozenset[int] | None, version: int) -> bool:
    """Whether ``If-None-Match`` tags match the current version (so the answer is 304)."""
    return tags is not None and (not tags or version in tags)


def digits(text: str) -> bool:
    # isdigit alone accepts "²", which a latin-1 header can carry and int() refuses
    return text.isascii() and text.isdigit()


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


Answer = Callable[[str], Awaitable[Response]]


class LongPoll(Held):
    """A request answered when its resource changes, at its deadline, or at shutdown.

    It is registered with the notifier *before* the resource is read, so that nothing committed
    after the read can be missed; what is delivered until :meth:`wait` arms it (with the version
    read) is kept and judged then. ``answer`` builds the response for the reason it is given
    (``changed``, ``timeout`` or ``shutdown``).
    """

    __slots__ = ("_accept", "_answer", "_early", "_responder", "_scope", "_send")

    def __init__(
        self, scope: Scope | None = None, send: Send | None = None, *, answer: Answer | None = None
    ) -> None:
        super().__init__()
        self._answer = answer
        self._accept: Callable[[Change], bool] | None = None
        self._early: list[Change | None] | None = None  # before arming: changes, None: shutdown
        self._responder: asyncio.Task[None] | None = None
        if scope is not None and send is not None:
            self.bind(scope, send)

    def bind(self, scope: Scope, send: Send) -> None:
        """The request this long poll answers (when it was not given to the constructor)."""
        scope.setdefault("state", {})[LONG_LIVED] = True  # its wait is not latency (metrics.py)
        self._scope = scope
        self._send = send

    async def answer(self, reason: str) -> Response:
        """The response for ``reason``: the constructor's ``answer``, unless a subclass says."""
        if self._answer is None:
            raise TypeError(f"{type(self).__name__} has no answer")
        return await self._answer(reason)

    def deliver(self, change: Change) -> None:
        """A change of the followed resource: answer if the client has not seen it."""
        if self._accept is None:
            self._keep(change)
        elif self._accept(change):
            self._respond("changed")

    def end(self) -> None:
        """The server is shutting down: answer now."""
        if self._accept is None:
            self._keep(None)
        else:
            self._respond("shutdown")

    def _keep(self, early: Change | None) -> None:
        if self._early is None:
            self._early = []
        self._early.append(early)

    async def wait(
        self, receive: Receive, seconds: float, *, accept: Callable[[Change], bool]
    ) -> None:
        """Hold the request for at most ``seconds``; ``accept`` says which changes are news."""
        self._accept = accept
        early, self._early = self._early or [], None
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
                response = await self.answer(reason)
            except Exception as exc:
                await send_error(self._scope, nothing, self._send, exc)
                return
            await response(self._scope, nothing, self._send)
        except Exception:
            log.exception("long poll answer failed")
            self.abort()
