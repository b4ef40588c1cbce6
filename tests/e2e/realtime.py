"""Helpers for real-time tests: an in-process server and a small Server-Sent Events reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
from fastapi import FastAPI

from mercato.config import Settings
from mercato.web.app import create_app
from tests.conftest import make_settings
from tests.e2e.helpers import SUCCESS_CARD, User, create_product, draft, register, staff_user
from tests.e2e.server import free_port
from tests.integration.follow import eventually


@asynccontextmanager
async def live_client(
    database_url: str, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A real server (streams need one) with one-second heartbeats, and a client for it."""
    values: dict[str, Any] = {"realtime_heartbeat_s": 1, "realtime_retry_ms": 1500, **overrides}
    async with (
        serving(make_settings(database_url, **values)) as (app, url),
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield app, client


async def placed_order(
    client: httpx.AsyncClient, app: FastAPI
) -> tuple[User, User, dict[str, Any]]:
    """(staff, owner, order) with the order placed and paid."""
    clerk = await staff_user(client, app.state.container)
    product = await create_product(client, clerk, stock=5)
    owner = await register(client)
    order = await draft(client, owner, [(product["id"], 1)])
    placed = await client.post(
        f"/v1/orders/{order['id']}/place", json={"card_number": SUCCESS_CARD}, headers=owner.auth
    )
    assert placed.status_code == 200, placed.text
    return clerk, owner, placed.json()


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, str]]:
    """The application behind a real uvicorn server in this event loop (streams need one)."""
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, within=10)
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Event:
    id: str | None = None
    event: str = "message"
    data: str = ""
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return orjson.loads(self.data)


class EventReader:
    """Reads a text/event-stream response one event (or comment) at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.ended = False

    async def next(self, *, within: float = 5.0) -> Event:
        """The next dispatched block: an event, a ``retry:``, or comments only."""
        event = Event()
        seen = False
        async with asyncio.timeout(within):
            while True:
                try:
                    line = await anext(self._lines)
                except StopAsyncIteration:
                    self.ended = True
                    raise
                if line == "":
                    if seen:
                        return event
                    continue
                seen = True
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    event.comments.append(value)
                elif name == "data":
                    event.data = f"{event.data}\n{value}" if event.data else value
                elif name == "retry":
                    event.retry = int(value)
                else:
                    setattr(event, name, value)

    async def events(self, count: int, *, within: float = 5.0) -> list[Event]:
        """The next ``count`` events with a type (skipping heartbeats and retry hints)."""
        found: list[Event] = []
        async with asyncio.timeout(within):
            while len(found) < count:
                block = await self.next(within=within)
                if block.id is not None or block.event != "message":
                    found.append(block)
        return found

    async def until_end(self, *, within: float = 5.0) -> list[Event]:
        """Every remaining block until the server ends the stream."""
        rest: list[Event] = []
        async with asyncio.timeout(within):
            while True:
                try:
                    rest.append(await self.next(within=within))
                except StopAsyncIteration:
                    return rest
