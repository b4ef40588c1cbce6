"""PostgreSQL ``LISTEN``: one dedicated connection per process, made again after every loss.

The connection is not taken from the pool (a pooled connection would stop listening when it is
released) and serves every waiting client of the process. It is kept honest by a cheap query
every ``keepalive_s`` (a half-open TCP connection is otherwise only noticed when the kernel gives
up, many minutes later). Notifications sent while it is down are lost, so every successful
connect calls ``on_connect``, which makes the hub catch up from the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

import asyncpg

log = logging.getLogger("mercato.notify")


class PgListener:
    """LISTENs on one channel and forwards each notification's payload."""

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        on_notify: Callable[[range | None], None],
        on_connect: Callable[[], None],
        timeout: float = 5.0,
        keepalive_s: float = 10.0,
        max_backoff: float = 30.0,
    ) -> None:
        self._dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        self._channel = channel
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._timeout = timeout
        self._keepalive = keepalive_s
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.connects = 0  # successful connects so far (a reconnect counter for metrics)

    def start(self) -> None:
        """Start listening in the background (no-op when already listening)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="notify:listen")

    @property
    def listening(self) -> bool:
        """Whether it is meant to listen now (connected, or trying to connect)."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        delay = 0.25
        while True:
            try:
                await self._listen()
                log.warning("LISTEN %s: connection lost; reconnecting", self._channel)
                delay = 0.25  # connected, then lost: try again promptly
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("LISTEN %s: %s; reconnecting", self._channel, type(exc).__name__)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(self._max_backoff, delay * 2)

    async def _listen(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._dsn,
            timeout=self._timeout,
            server_settings={"application_name": "mercato-listen"},
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        try:
            await conn.add_listener(self._channel, self._notified)
            self.connected = True
            self.connects += 1
            if self.connects > 1:
                log.info("LISTEN %s: connected again", self._channel)
            self._on_connect()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._keepalive):
                        await lost.wait()
                if not lost.is_set():
                    await conn.fetchval("SELECT 1", timeout=self._timeout)
        finally:
            self.connected = False
            if not conn.is_closed():
                conn.terminate()

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self._on_notify(inserted(payload))


def inserted(payload: str) -> range | None:
    """The outbox sequence numbers a notification names: ``first-last`` from the trigger of
    migration 0013 (one per inserting statement), a lone ``seq`` from 0003's (one per row, on a
    database not yet migrated); None for anything else, which only says "look for news"."""
    first, dash, last = payload.partition("-")
    if not first.isdigit() or (dash and not last.isdigit()):
        return None
    start, end = int(first), int(last) if dash else int(first)
    return range(start, end + 1) if start <= end else None
