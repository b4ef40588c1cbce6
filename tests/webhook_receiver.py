"""A local webhook receiver for tests and bench/webhooks.py: a small HTTP/1.1 server on asyncio.

Each path answers as told (status, delay, extra headers); every request is recorded with its
headers, body and arrival time, and, when the path has a secret, its Standard Webhooks
signature is verified by the ``standardwebhooks`` library, as a consumer would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Behaviour:
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    secret: str | None = None


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()
    verified: bool | None  # None: the path has no secret to verify with

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


class Receiver:
    """Answers POSTs per path; see the module docstring."""

    def __init__(self) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self.received: list[Received] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._arrived = asyncio.Condition()
        self._handlers: set[asyncio.Task[None]] = set()

    def url(self, path: str, *, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def wait_for(self, path: str, count: int, within: float = 10.0) -> list[Received]:
        """The first ``count`` requests to ``path``, waiting up to ``within`` seconds."""
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: len(self.at(path)) >= count)
        return self.at(path)[:count]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in self._handlers:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # stopped: end quietly (this is the top of the connection's own task)
        finally:
            writer.close()
            self._handlers.discard(task)

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        behaviour = self.behaviours.get(path, Behaviour(status=404))
        await self._record(path, headers, body, behaviour)
        if behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        extra = "".join(f"{k}: {v}\r\n" for k, v in behaviour.headers.items())
        writer.write(
            f"HTTP/1.1 {behaviour.status} X\r\ncontent-length: 2\r\n{extra}\r\nok".encode()
        )
        await writer.drain()
        return True

    async def _record(
        self, path: str, headers: dict[str, str], body: bytes, behaviour: Behaviour
    ) -> None:
        verified = None
        if behaviour.secret is not None:
            try:
                Webhook(behaviour.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        async with self._arrived:
            self.received.append(Received(path, headers, body, time.monotonic(), verified))
            self._arrived.notify_all()


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A receiver listening on 127.0.0.1 for the block."""
    receiver = Receiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
