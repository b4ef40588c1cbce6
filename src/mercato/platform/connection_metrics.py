"""Sample the database connections' state into the metrics, once a second (a flush sampler).

The pool's connections in use against its size say when requests start queueing for a
connection; the LISTEN connection's state says whether real-time followers on other replicas
are woken at once or only by the safety poll. Both exist only on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

from mercato.platform.db import Database, DatabaseUnavailable
from mercato.platform.db_postgres import PostgresDatabase
from mercato.platform.metrics import Metrics
from mercato.platform.notify_postgres import PgListener


def connection_sampler(
    db: Database, listener: object | None, metrics: Metrics
) -> Callable[[], None]:
    """A sampler for :meth:`Metrics.on_flush` (a no-op on SQLite)."""

    def sample() -> None:
        if isinstance(db, PostgresDatabase):
            try:
                pool = db.pool
            except DatabaseUnavailable:
                return
            size, idle = pool.get_size(), pool.get_idle_size()
            metrics.set_pool(in_use=size - idle, idle=idle, size=pool.get_max_size())
        if isinstance(listener, PgListener):
            metrics.set_listener(_state(listener), connects=listener.connects)

    return sample


def _state(listener: PgListener) -> str:
    if listener.connected:
        return "connected"
    return "disconnected" if listener.listening else "idle"
