"""Choosing the database implementation from a URL."""

from __future__ import annotations

from mercato.platform.db import Database, is_postgres_url
from mercato.platform.db_postgres import PostgresDatabase
from mercato.platform.db_sqlite import SqliteDatabase


def create_database(url: str, *, pool_size: int = 10, timeout: float = 5.0) -> Database:
    """The database for a URL: ``postgresql://...`` or ``sqlite:///path``."""
    if is_postgres_url(url):
        return PostgresDatabase(url, pool_size=pool_size, timeout=timeout)
    if url.startswith("sqlite:///"):
        return SqliteDatabase(url, timeout=timeout)
    raise ValueError("MERCATO_DATABASE_URL must start with postgresql:// or sqlite:///")
