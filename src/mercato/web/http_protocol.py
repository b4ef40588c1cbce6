"""uvicorn's HTTP protocol, with each response's head and body sent in one write.

uvicorn writes a response's status line and headers when the application starts the response,
and its body in a second write. Each write is a system call on the server and wakes the reader
on the other side (a load balancer, a client); on the product read the second write was about a
twentieth of the server's CPU (``bench/RESULTS.md``). Here the head is held until the body's
first write, which nearly always follows in the same turn of the event loop, and both go out
together; a head with no body in that turn (an event stream waiting for its first event, a long
poll) is sent at the end of the turn, so nothing waits longer than that.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mercato.web.accept import BalancedListener


class HeadWithBody:
    """The transport one response is written to: its first write (the head, or a ``100
    Continue``) is held until the next write or the end of the event loop's turn."""

    __slots__ = ("_held", "_loop", "_wrote", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._wrote = False

    def write(self, data: bytes) -> None:
        """Send ``data`` with the held head, or hold it when it is the first write."""
        if not self._wrote:
            self._wrote = True
            self._held = data
            self._loop.call_soon(self.flush)
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self.transport.write(data)

    def flush(self) -> None:
        """Send the held head, if it is still held."""
        if self._held is not None:
            data, self._held = self._held, None
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        """Send what is held, then close the connection."""
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        """Whether the connection is closing."""
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each response through :class:`HeadWithBody`.

    Under a supervisor, ``balance`` is the worker's listener: when it says so, the response
    closes the connection, so its client reconnects to a worker holding fewer
    (:meth:`mercato.web.accept.BalancedListener.hand_over`).
    """

    balance: BalancedListener | None = None

    def on_headers_complete(self) -> None:
        """Start the request's cycle as uvicorn does, with the response's own transport."""
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]
            if cycle.keep_alive and self.balance is not None and self.balance.hand_over():
                cycle.keep_alive = False  # uvicorn says "Connection: close" and closes after
