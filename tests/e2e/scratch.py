"""Throw-away databases for tests that move a schema away from this build's head."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from tests.conftest import PG_URL


def _split(url: str) -> tuple[str, str]:
    base, name = url.rsplit("/", 1)
    return base, name.split("?", 1)[0]


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def scratch_database(backend: str, folder: Path, suffix: str) -> Iterator[str]:
    """An empty database of the backend's kind, named after the test database, dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / suffix}.db"
        return
    base, name = _split(PG_URL)
    scratch = f"{name}_{suffix}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
    asyncio.run(_admin(f'CREATE DATABASE "{scratch}"'))
    try:
        yield f"{base}/{scratch}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
