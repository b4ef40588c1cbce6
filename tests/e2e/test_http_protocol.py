"""``mercato serve``'s HTTP protocol: a response's head and body leave in one write, and a head
whose body is not ready (an event stream) still leaves at once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from mercato.web.http_protocol import OneWriteHttpToolsProtocol

pytestmark = pytest.mark.anyio

written: list[bytes] = []  # what the server wrote to its sockets, write by write
BODY_GO = asyncio.Event()


class CountingTransport:
    """A server connection's real transport, noting each write."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def write(self, data: bytes) -> None:
        written.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CountedProtocol(OneWriteHttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(CountingTransport(transport))  # type: ignore[arg-type]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await BODY_GO.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": False})
        return
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    if scope["path"] == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def serving() -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=CountedProtocol, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn.Server has no event for it)
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


async def test_each_response_leaves_in_one_write() -> None:
    written.clear()
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers = []
        for _ in range(2):  # on one kept-alive connection
            writer.write(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
            answers.append(await read_response(reader))
        writer.close()

    assert all(a.startswith(b"HTTP/1.1 200 OK\r\n") for a in answers)
    assert all(a.endswith(b'\r\n\r\n{"ok":true}') for a in answers)
    assert written == answers  # one write each, head and body together


async def test_a_response_that_closes_the_connection_is_sent_whole_first() -> None:
    written.clear()
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /close HTTP/1.1\r\nhost: t\r\n\r\n")
        answer = await reader.read()  # to the end: the server closes
        writer.close()

    assert answer.endswith(b'{"ok":true}')
    assert b"connection: close" in answer
    assert written == [answer]


async def test_a_head_whose_body_is_not_ready_leaves_at_once() -> None:
    written.clear()
    BODY_GO.clear()
    async with serving() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /stream HTTP/1.1\r\nhost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)  # before any body
        BODY_GO.set()
        rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        writer.close()

    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"data: 1" in rest
    assert len(written) == 2


def test_mercato_serve_speaks_it() -> None:
    from mercato.config import Settings
    from mercato.web.serve import server_config

    config = server_config(Settings(), host="127.0.0.1", port=8000, workers=1)

    assert config.http is OneWriteHttpToolsProtocol
