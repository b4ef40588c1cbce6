"""Where a process is in its life: starting, serving, draining. The probes and the server read it.

* **starting**: the start-up checks (database reachable, schema at the expected migration) run
  once when the application starts; while any fails the process still answers ``/livez`` and
  ``/startupz`` (503, naming the failing check), refuses other requests with 503 ``starting``, and
  retries in the background, so a database that comes up late or a migration that runs late
  needs no restart.
* **serving**: start-up succeeded; background workers run; ``/readyz`` checks the database.
* **draining**: SIGTERM arrived (:func:`drain_process`). ``/readyz`` answers 503 at once, every
  response carries ``Connection: close`` so clients reconnect elsewhere, and whatever waits for
  something that may take long ends early (see below). The server keeps accepting for the drain
  delay, then stops listening and finishes in-flight requests (``mercato.web.serve``).

Whatever holds a connection ends when draining begins: the lifecycle calls its ``on_drain``
hooks (the notifier's shutdown: event streams end with a reconnect event, long polls answer at
once) and :class:`LifecycleMiddleware` adds ``Connection: close`` to every response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mercato.platform.error_codes import ErrorCode

log = logging.getLogger("mercato.lifecycle")

Check = Callable[[], Awaitable[None]]

PROBE_PATHS: Final = frozenset({"/livez", "/readyz", "/startupz", "/metrics"})
CHECK_TIMEOUT_S: Final = 2.0


async def run_checks(checks: dict[str, Check]) -> tuple[bool, dict[str, str]]:
    """Run named checks concurrently, each bounded in time; 'ok' or 'failing: <why>' each."""

    async def one(check: Check) -> str:
        try:
            await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_S)
        except TimeoutError:
            return f"failing: no answer within {CHECK_TIMEOUT_S:g} s"
        except Exception as exc:
            reason = str(exc).strip() or type(exc).__name__
            return f"failing: {reason[:200]}"
        return "ok"

    names = list(checks)
    outcomes = await asyncio.gather(*(one(checks[name]) for name in names))
    results = dict(zip(names, outcomes, strict=True))
    return all(v == "ok" for v in results.values()), results


class Lifecycle:
    """The state of one application in one process."""

    def __init__(
        self,
        *,
        startup_checks: dict[str, Check],
        readiness_checks: dict[str, Check],
        retry_max_s: float = 5.0,
        on_drain: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.startup_checks = startup_checks
        self.on_drain = list(on_drain)
        self.readiness_checks = readiness_checks
        self.retry_max_s = retry_max_s
        self.started = False
        self.startup_results: dict[str, str] = {name: "pending" for name in startup_checks}
        self.draining = asyncio.Event()
        self.draining_since: float | None = None
        self._retrying: asyncio.Task[None] | None = None

    @property
    def is_draining(self) -> bool:
        """Whether shutdown has begun."""
        return self.draining.is_set()

    def begin_draining(self) -> None:
        """Fail readiness from now on and wake everything that waits (idempotent)."""
        if not self.draining.is_set():
            self.draining_since = time.monotonic()
            log.warning("draining: readiness fails from now on, waiting requests end early")
            self.draining.set()
            for hook in self.on_drain:
                hook()

    async def start(self, on_started: Callable[[], Awaitable[None]]) -> bool:
        """Run the start-up checks; on failure keep retrying in the background.

        ``on_started`` runs once, when the checks first pass (it starts the workers).
        Returns whether start-up completed now.
        """
        if await self._attempt():
            await on_started()
            return True
        self._retrying = asyncio.create_task(self._retry(on_started), name="startup-retry")
        return False

    async def _attempt(self) -> bool:
        ok, self.startup_results = await run_checks(self.startup_checks)
        if not ok:
            failing = {k: v for k, v in self.startup_results.items() if v != "ok"}
            log.error("start-up incomplete, retrying: %s", failing)
        self.started = ok
        return ok

    async def _retry(self, on_started: Callable[[], Awaitable[None]]) -> None:
        delay = 0.25
        while not self.is_draining:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.draining.wait(), timeout=delay)
            if self.is_draining:
                return
            if await self._attempt():
                log.warning("start-up completed after retrying")
                await on_started()
                return
            delay = min(self.retry_max_s, delay * 2)

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        """Whether to receive traffic now, and each check's result."""
        if self.is_draining:
            return False, {"draining": "failing: shutting down"}
        if not self.started:
            return False, {"started": "failing: start-up incomplete"}
        return await run_checks(self.readiness_checks)

    async def close(self) -> None:
        """Begin draining and stop retrying start-up."""
        self.begin_draining()
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
            self._retrying = None


# The lifecycles of the applications served by this process (one, in practice): the signal
# handler of ``mercato serve`` drains them all.
_PROCESS: list[Lifecycle] = []
_PROCESS_DRAINING = asyncio.Event()  # set once: a signal that came before start-up still counts


def register(lifecycle: Lifecycle) -> None:
    """Make the process's shutdown signal reach this lifecycle."""
    _PROCESS.append(lifecycle)
    if _PROCESS_DRAINING.is_set():
        lifecycle.begin_draining()


def unregister(lifecycle: Lifecycle) -> None:
    """The opposite of :func:`register`."""
    with contextlib.suppress(ValueError):
        _PROCESS.remove(lifecycle)


def drain_process() -> None:
    """Begin draining every application of this process (call from the event loop thread)."""
    _PROCESS_DRAINING.set()
    for lifecycle in list(_PROCESS):
        lifecycle.begin_draining()


class LifecycleMiddleware:
    """Refuses business requests before start-up completes; asks clients to reconnect while
    draining (``Connection: close``), so keep-alive connections move to other replicas."""

    def __init__(self, app: ASGIApp, *, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.lifecycle.started and scope.get("path") not in PROBE_PATHS:
            await _problem(
                send, ErrorCode.STARTING, "The service is starting; retry shortly.", retry="2"
            )
            return

        started = False

        async def send_closing(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if self.lifecycle.is_draining:
                    headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                    message["headers"] = [*headers, (b"connection", b"close")]
            await send(message)

        try:
            await self.app(scope, receive, send_closing)
        except asyncio.CancelledError:
            # the server cut this request at its grace deadline: say so, rather than the bare
            # 500 the server would send, and tell the client to retry elsewhere at once
            if self.lifecycle.is_draining and not started:
                await _problem(
                    send,
                    ErrorCode.SHUTTING_DOWN,
                    "The server is shutting down; retry now.",
                    retry="0",
                )
            raise


async def _problem(send: Send, code: str, detail: str, *, retry: str) -> None:
    body = orjson.dumps(
        {
            "type": f"https://mercato.dev/problems/{code}",
            "title": "Service unavailable",
            "status": 503,
            "detail": detail,
            "code": code,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", retry.encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
