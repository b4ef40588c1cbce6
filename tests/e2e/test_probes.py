"""Kubernetes probes and the application lifecycle: starting, serving, draining."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import FastAPI

from mercato import migrate
from mercato.app import create_app
from mercato.migrations.compat import OLDEST_SCHEMA
from mercato.platform.connect import create_database
from tests.conftest import make_settings
from tests.e2e.helpers import register

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
            yield http


async def test_every_probe_answers_ok_once_started(client: httpx.AsyncClient) -> None:
    for path, checks in (
        ("/livez", {"event_loop": "ok"}),
        ("/readyz", {"database": "ok"}),
        ("/startupz", {"settings": "ok", "database": "ok", "schema": "ok"}),
    ):
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json() == {"status": "ok", "checks": checks}
        assert answer.headers["cache-control"] == "no-store"


async def test_an_unmigrated_database_holds_start_up_until_migrated_without_a_restart(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'late.db'}"
    app = create_app(make_settings(url, run_workers=True))
    async with serving(app) as http:
        startup = await http.get("/startupz")
        assert startup.status_code == 503
        assert startup.json()["checks"]["database"] == "ok"
        assert "run 'mercato db upgrade'" in startup.json()["checks"]["schema"]
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"started": "failing: start-up incomplete"}
        assert (await http.get("/livez")).status_code == 200
        refused = await http.get("/v1/products")
        assert refused.status_code == 503
        assert refused.json()["code"] == "starting"
        assert refused.headers["retry-after"] == "2"
        assert not app.state.container.started  # workers wait for start-up

        await anyio.to_thread.run_sync(migrate.upgrade, url)
        with anyio.fail_after(15):
            while True:
                if (await http.get("/startupz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get("/v1/products")).status_code == 200
        assert app.state.container.started


async def test_a_database_behind_this_build_is_refused_and_a_newer_one_accepted(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    first = migrate.ScriptDirectory.from_config(migrate.alembic_config(url)).get_base()
    assert first is not None
    await anyio.to_thread.run_sync(migrate.upgrade, url, first)
    async with serving(create_app(make_settings(url))) as http:
        startup = await http.get("/startupz")
        assert startup.status_code == 503
        assert startup.json()["checks"]["schema"] == (
            f"failing: database at {first}, older than {OLDEST_SCHEMA}; this build runs on "
            f"{OLDEST_SCHEMA}..{migrate.head()}; run the migration Job ('mercato db upgrade')"
        )

    # a newer build migrated past this one's head: a rollback must still start
    await anyio.to_thread.run_sync(migrate.upgrade, url)
    db = create_database(url)
    await db.connect()
    async with db.transaction() as conn:
        await conn.execute_text("UPDATE alembic_version SET version_num = 'ffffffff_newer'")
    await db.close()
    async with serving(create_app(make_settings(url))) as http:
        assert (await http.get("/startupz")).status_code == 200


async def test_draining_fails_readiness_at_once_but_keeps_serving(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    before = await client.get("/v1/products")
    assert "connection" not in before.headers
    app.state.lifecycle.begin_draining()
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "failing", "checks": {"draining": "failing: shutting down"}}
    served = await client.get("/v1/products")
    assert served.status_code == 200
    assert served.headers["connection"] == "close"  # clients move to another replica
    assert (await client.get("/livez")).status_code == 200
    assert (await client.get("/startupz")).status_code == 200


async def test_the_api_docs_flag_hides_the_interactive_docs(database_url: str) -> None:
    hidden = create_app(make_settings(database_url, feature_api_docs=False))
    async with serving(hidden) as http:
        assert (await http.get("/openapi.json")).status_code == 404
        assert (await http.get("/docs")).status_code == 404
    shown = create_app(make_settings(database_url, feature_api_docs=True))
    async with serving(shown) as http:
        assert (await http.get("/openapi.json")).status_code == 200
        assert (await http.get("/docs")).status_code == 200


async def test_the_discount_codes_flag_turns_discount_codes_off(database_url: str) -> None:
    for enabled, status in ((True, 201), (False, 422)):
        app = create_app(make_settings(database_url, feature_discount_codes=enabled))
        async with serving(app) as http:
            customer = await register(http)
            order = await http.post(
                "/v1/orders", json={"discount_code": "WELCOME10"}, headers=customer.auth
            )
            assert order.status_code == status, order.text
            if not enabled:
                assert order.json()["code"] == "invalid_discount_code"
