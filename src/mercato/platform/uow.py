"""The unit of work: one transaction per command, with the events it produced.

A service function receives a :class:`UnitOfWork`, loads and changes aggregates through their
stores on ``uow.conn``, and hands the aggregates back with :meth:`UnitOfWork.collect`. When the
function returns, the collected events are written to the outbox in the same transaction, the
transaction commits, and the after-commit hooks run (they wake the relay and, with PostgreSQL,
other processes). Deadlocks and serialization failures re-run the whole function.

Every unit of work commits when its function returns, whatever the request carries: nothing
ambient (an Idempotency-Key, a tracing context) changes where a transaction ends.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from mercato.kernel.events import AggregateRoot, DomainEvent
from mercato.platform import outbox
from mercato.platform.db import Connection, Database, run_in_transaction

T = TypeVar("T")
AfterCommit = Callable[[list[DomainEvent]], None]


class UnitOfWork:
    """One open transaction and the domain events collected in it."""

    __slots__ = ("conn", "events")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.events: list[DomainEvent] = []

    def collect(self, *aggregates: AggregateRoot) -> None:
        """Take the events the aggregates recorded, to be written on commit."""
        for aggregate in aggregates:
            self.events.extend(aggregate.pull_events())

    def add(self, *events: DomainEvent) -> None:
        """Add events that no aggregate recorded (e.g. from a stock adjustment)."""
        self.events.extend(events)


class Transactor:
    """Runs service functions as units of work against one database."""

    def __init__(self, db: Database, *, attempts: int = 5) -> None:
        self.db = db
        self.attempts = attempts
        self._after_commit: list[AfterCommit] = []
        self._on_retry: list[Callable[[int], None]] = []

    def after_commit(self, hook: AfterCommit) -> None:
        """Call ``hook`` with the events after every committed unit of work that produced some."""
        self._after_commit.append(hook)

    def on_retry(self, hook: Callable[[int], None]) -> None:
        """Call ``hook`` with the attempt number whenever a transaction is retried."""
        self._on_retry.append(hook)

    def _retried(self, attempt: int) -> None:
        for hook in self._on_retry:
            hook(attempt)

    async def __call__(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run ``work`` in a unit of work and commit it with its events."""
        committed: list[DomainEvent] = []

        async def attempt(conn: Connection) -> T:
            uow = UnitOfWork(conn)
            result = await work(uow)
            if uow.events:
                await outbox.append(conn, uow.events)
            committed[:] = uow.events
            return result

        result = await run_in_transaction(
            self.db, attempt, attempts=self.attempts, on_retry=self._retried
        )
        self._committed(committed)
        return result

    def _committed(self, events: list[DomainEvent]) -> None:
        if events:
            for hook in self._after_commit:
                hook(events)

    async def read(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run a read-only query function on a pooled connection outside a transaction."""
        async with self.db.connection() as conn:
            return await work(conn)
