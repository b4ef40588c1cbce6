"""Staff cannot lock the shop out: never their own account, never the last active staff account.

The last-staff rule needs a database with a known set of staff accounts, so these tests run on
a database of their own (a fresh SQLite file, or a fresh PostgreSQL database beside the test one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.to_thread
import asyncpg
import httpx
import pytest

from mercato.bootstrap import Container
from mercato.customers import Role
from mercato.customers.domain import CannotDeactivateSelf, LastActiveStaff
from mercato.migrations import migrate
from mercato.web.app import create_app
from tests.conftest import make_settings, running, unique

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"


def _server_url(url: str) -> tuple[str, str]:
    """The URL of the same server's maintenance database, and the test database's name."""
    base, _, name = url.rpartition("/")
    return f"{base}/postgres", name.split("?")[0]


@pytest.fixture
async def own_database(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A freshly migrated database no other test writes to."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'staff.db'}"
        await anyio.to_thread.run_sync(migrate.upgrade, url)  # alembic runs its own loop
        yield url
        return
    server, name = _server_url(database_url)
    own = f"{name}_staff"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{own}"')
        url = database_url.replace(f"/{name}", f"/{own}", 1)
        await anyio.to_thread.run_sync(migrate.upgrade, url)  # alembic runs its own loop
        yield url
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{own}" WITH (FORCE)')
        await conn.close()


async def _staff(container: Container, name: str) -> str:
    account = await container.customers.register(
        email=f"{unique(name)}@example.com", password=PASSWORD, name=name, role=Role.STAFF
    )
    return account.id


async def test_staff_cannot_deactivate_themselves(container: Container) -> None:
    me = await _staff(container, "self")
    await _staff(container, "other")  # not the last one: only the self rule applies

    with pytest.raises(CannotDeactivateSelf):
        await container.customers.set_active(me, active=False, actor_id=me)
    assert (await container.customers.get(me)).active is True


async def test_the_last_active_staff_account_cannot_be_deactivated(own_database: str) -> None:
    async with running(make_settings(own_database)) as container:
        first = await _staff(container, "first")
        second = await _staff(container, "second")
        customer = await container.customers.register(
            email=f"{unique('cust')}@example.com", password=PASSWORD, name="C"
        )

        await container.customers.set_active(second, active=False, actor_id=first)
        await container.customers.set_active(customer.id, active=False, actor_id=first)
        with pytest.raises(LastActiveStaff):
            await container.customers.set_active(first, active=False)
        assert (await container.customers.get(first)).active is True

        # another account made active again lifts the rule
        await container.customers.set_active(second, active=True, actor_id=first)
        await container.customers.set_active(first, active=False, actor_id=second)
        assert (await container.customers.get(first)).active is False


async def test_two_staff_deactivating_each_other_at_once_leave_one_active(
    own_database: str,
) -> None:
    async with running(make_settings(own_database)) as container:
        a = await _staff(container, "a")
        b = await _staff(container, "b")
        results = await asyncio.gather(
            container.customers.set_active(b, active=False, actor_id=a),
            container.customers.set_active(a, active=False, actor_id=b),
            return_exceptions=True,
        )
        assert sum(isinstance(r, LastActiveStaff) for r in results) == 1, results
        still = [s for s in (a, b) if (await container.customers.get(s)).active]
        assert len(still) == 1


async def test_the_api_refuses_both_with_their_own_codes(own_database: str) -> None:
    app = create_app(make_settings(own_database))
    async with app.router.lifespan_context(app):
        container: Container = app.state.container
        me = await _staff(container, "api")
        email = str((await container.customers.get(me)).email)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
            token = (
                await http.post("/v1/auth/token", json={"email": email, "password": PASSWORD})
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            own = await http.post(f"/v1/customers/{me}/deactivate", headers=auth)
            assert (own.status_code, own.json()["code"]) == (409, "cannot_deactivate_self")
            assert own.headers["content-type"] == "application/problem+json"
        with pytest.raises(LastActiveStaff):
            await container.customers.set_active(me, active=False)
