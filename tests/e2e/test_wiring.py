"""How the application is put together: its typed state, its middleware, the container's start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi import FastAPI

from mercato.bootstrap import build
from mercato.config import Settings
from mercato.platform.appstate import platform_state
from mercato.platform.db import DatabaseUnavailable
from mercato.platform.http import BodyLimitMiddleware
from mercato.platform.idempotency import IdempotencyMiddleware
from mercato.platform.instrumentation import InstrumentationMiddleware
from mercato.platform.lifecycle import LifecycleMiddleware
from mercato.platform.problems import MiddlewareErrorsMiddleware
from mercato.web.app import create_app, middleware
from mercato.web.state import AppState
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio


def _worker_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("worker:")]


async def test_the_application_state_is_one_typed_object_built_from_the_container(
    app: FastAPI,
) -> None:
    state = app.state
    assert isinstance(state, AppState)
    assert platform_state(app) is state
    container = state.container
    assert state.settings is container.settings
    assert (state.customers, state.catalog, state.orders) == (
        container.customers,
        container.catalog,
        container.orders,
    )
    assert (state.auth, state.switches, state.metrics, state.notifier) == (
        container.auth,
        container.switches,
        container.metrics,
        container.notifier,
    )


def test_the_platform_state_of_an_application_mercato_did_not_build_is_refused() -> None:
    with pytest.raises(TypeError, match="create_app"):
        platform_state(FastAPI())


def test_the_middleware_runs_in_the_order_it_is_declared(settings: Settings) -> None:
    app = create_app(settings)
    stack = [layer.cls for layer in app.user_middleware]  # outermost first
    declared = [layer.cls for layer in middleware(app.state.container, app.state.lifecycle)]
    assert declared == [
        LifecycleMiddleware,
        BodyLimitMiddleware,
        MiddlewareErrorsMiddleware,
        IdempotencyMiddleware,
    ]
    assert stack[0] is InstrumentationMiddleware
    first = stack.index(LifecycleMiddleware)
    assert stack[first : first + len(declared)] == declared


async def test_starting_the_container_again_starts_its_workers_once(database_url: str) -> None:
    container = build(make_settings(database_url, run_workers=True))
    try:
        await container.start(workers=False)
        assert not container.started
        assert _worker_tasks() == []
        await container.start()
        running = _worker_tasks()
        assert container.started
        assert len(running) == len(container.runner.workers)
        await container.start()
        assert _worker_tasks() == running
    finally:
        await container.stop()
    assert _worker_tasks() == []
    assert not container.started


async def test_a_container_started_without_its_database_stops_cleanly(tmp_path: Path) -> None:
    # a database file in a folder that does not exist cannot be opened
    missing = tmp_path / "no-such-folder" / "mercato.db"
    container = build(make_settings(f"sqlite:///{missing}", run_workers=True))
    before = asyncio.all_tasks()
    with pytest.raises(DatabaseUnavailable):
        await container.start()
    assert not container.started
    assert _worker_tasks() == []
    await container.stop()
    await asyncio.sleep(0)
    leftover = [task for task in asyncio.all_tasks() - before if not task.done()]
    assert leftover == []
