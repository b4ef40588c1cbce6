"""The baseline for bench/realtime.py: a bare FastAPI app holding idle long polls and streams.

``GET /lp/{id}`` is an ordinary FastAPI endpoint that waits on an event; ``GET /sse`` is a
``StreamingResponse`` that writes one comment and then waits. Neither touches a database: they
show what holding a connection costs in FastAPI itself, the yardstick the issue quotes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()
_never = asyncio.Event()


@app.get("/lp/{order_id}")
async def long_poll(order_id: str, wait: float = 60) -> dict[str, str]:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait):
            await _never.wait()
    return {"id": order_id}


@app.get("/sse")
async def stream() -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        yield b"retry: 3000\n\n"
        await _never.wait()

    return StreamingResponse(body(), media_type="text/event-stream")
