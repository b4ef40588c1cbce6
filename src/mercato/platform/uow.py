"""The unit of work: one transaction per command, with the events it produced.

A service function receives a :class:`UnitOfWork`, loads and changes aggregates through their
stores on ``uow.conn``, and hands the aggregates back with :meth:`UnitOfWork.collect`. When the
function returns, the collected events are written to the outbox in the same transaction, the
transaction commits, and the after-commit hooks run (they wake the relay and, with PostgreSQL,
other processes). Deadlocks and serialization failures re-run the whole function.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mercato.kernel.events import AggregateRoot, DomainEvent
from mercato.platform import idempotency, outbox
from mercato.platform.db import Connection, Database, TransientError, run_in_transaction

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

        context = idempotency.current()
        if context is not None:
            return await self._deferred(context, attempt, committed)
        result = await run_in_transaction(
            self.db, attempt, attempts=self.attempts, on_retry=self._retried
        )
        self._committed(committed)
        return result

    def _committed(self, events: list[DomainEvent]) -> None:
        if events:
            for hook in self._after_commit:
                hook(events)

    async def _deferred(
        self,
        context: idempotency.IdempotencyContext,
        attempt: Callable[[Connection], Awaitable[T]],
        committed: list[DomainEvent],
    ) -> T:
        """Run like ``__call__`` but leave the COMMIT to the idempotency middleware.

        The request's response is then stored in the same transaction as its effects (see
        :mod:`mercato.platform.idempotency`). An earlier deferred unit of work of the same
        request is committed first.
        """
        await context.flush()
        for number in range(1, self.attempts + 1):
            manager = self.db.transaction()
            conn = await manager.__aenter__()
            try:
                result = await attempt(conn)
            except BaseException as exc:
                await manager.__aexit__(type(exc), exc, exc.__traceback__)
                if not isinstance(exc, TransientError) or number == self.attempts:
                    raise
                self._retried(number)
                await asyncio.sleep(random.uniform(0, 0.01 * 2**number))
                continue
            context.deferred = idempotency.Deferred(
                manager.__aexit__, conn, functools.partial(self._committed, list(committed))
            )
            return result
        raise AssertionError("unreachable")

    async def read(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run a read-only query function on a pooled connection outside a transaction."""
        context = idempotency.current()
        if context is not None:
            await context.flush()
        async with self.db.connection() as conn:
            return await work(conn)
