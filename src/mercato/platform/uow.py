"""The unit of work: one transaction per command, its repositories, and the events it produced.

A service function receives a :class:`UnitOfWork` and reaches aggregates through the module's
repositories, ``uow.repository(OrderRepository)``: one instance per unit of work, created on
first use (the platform cannot name the business modules, so the lookup is by class rather
than by attribute). A repository remembers every aggregate it handed out and the concurrency
token (version, or status) it was loaded with; ``save`` writes only a changed aggregate, with
that token as the guard, and raises the module's conflict error when another transaction moved
the row meanwhile.

When the function returns, the unit of work takes the events every handed-out aggregate
recorded, writes them to the outbox in the same transaction, commits, and runs the
after-commit hooks (they wake the relay and, with PostgreSQL, other processes). An aggregate
that changed but was never saved is a programming error, refused before commit: its events
would otherwise describe a change that was not written. Deadlocks and serialization failures
re-run the whole function with fresh repositories.

Every unit of work commits when its function returns, whatever the request carries: nothing
ambient (an Idempotency-Key, a tracing context) changes where a transaction ends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from mercato.kernel.events import AggregateRoot, DomainEvent
from mercato.platform import outbox
from mercato.platform.db import Connection, Database, run_in_transaction

T = TypeVar("T")
A = TypeVar("A", bound=AggregateRoot)
R = TypeVar("R", bound="Repository")
AfterCommit = Callable[[list[DomainEvent]], None]


class UnsavedChanges(RuntimeError):
    """A unit of work ended with an aggregate that changed but was not saved (a bug)."""


class UnitOfWork:
    """One open transaction (or, for reads, one pooled connection) and what it touched."""

    __slots__ = ("_extra", "_repositories", "conn")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._repositories: dict[type[Repository], Repository] = {}
        self._extra: list[DomainEvent] = []

    def repository(self, kind: type[R]) -> R:
        """The unit of work's instance of a repository class (created on first use)."""
        found = self._repositories.get(kind)
        if found is None:
            found = self._repositories[kind] = kind(self)
        return found  # type: ignore[return-value]

    def add(self, *events: DomainEvent) -> None:
        """Add events that no aggregate recorded (e.g. from a stock adjustment)."""
        self._extra.extend(events)

    def collect_events(self) -> list[DomainEvent]:
        """Take the events to commit: refuses unsaved changes, then pulls every aggregate's."""
        events = list(self._extra)
        self._extra.clear()
        for repository in self._repositories.values():
            repository.ensure_saved()
            events.extend(repository.pull_events())
        return events


class Repository:
    """Base of a module's repository: explicit SQL on the unit of work's connection.

    It keeps the connection, not the unit of work: the unit of work holds its repositories, and
    a reference back would make each unit of work a reference cycle that only the garbage
    collector frees, with every aggregate it loaded (65 objects per placement, collected 50,000
    at a time in pauses of 90-115 ms that stalled every request on the process).
    """

    __slots__ = ("conn",)

    def __init__(self, uow: UnitOfWork) -> None:
        self.conn: Connection = uow.conn

    def ensure_saved(self) -> None:
        """Raise :class:`UnsavedChanges` if an aggregate handed out changed without a save."""

    def pull_events(self) -> list[DomainEvent]:
        """The events the aggregates handed out recorded (none for a plain repository)."""
        return []


class TrackingRepository(Repository, ABC, Generic[A]):
    """A repository of one aggregate type, guarding every save with the token it loaded.

    Subclasses load rows into aggregates and pass each through :meth:`_track` (for loads) or
    :meth:`_track_new` (for inserts); they implement :meth:`_token` (the value a concurrent
    change moves: the version, or a status), :meth:`_write` (a guarded UPDATE, False when the
    guard no longer matches) and :meth:`_conflict` (the module's error for that case).
    """

    __slots__ = ("_tracked",)

    def __init__(self, uow: UnitOfWork) -> None:
        super().__init__(uow)
        self._tracked: dict[int, tuple[A, Hashable]] = {}

    @abstractmethod
    def _token(self, aggregate: A) -> Hashable:
        """What a concurrent change to the aggregate's row would move."""

    @abstractmethod
    async def _write(self, aggregate: A, *, expected: Hashable) -> bool:
        """Write the aggregate if its row still holds ``expected``; False if it moved."""

    @abstractmethod
    async def _conflict(self, aggregate: A) -> Exception:
        """The error for a save that lost a race (may read the row's current state)."""

    def _track(self, aggregate: A) -> A:
        """Remember an aggregate as loaded, with its token, and hand it out."""
        self._tracked[id(aggregate)] = (aggregate, self._token(aggregate))
        return aggregate

    def _track_new(self, aggregate: A) -> A:
        """Remember an aggregate just inserted (its events are collected on commit)."""
        return self._track(aggregate)

    def loaded_token(self, aggregate: A) -> Hashable:
        """The token an aggregate had when it was loaded or last saved."""
        return self._tracked[id(aggregate)][1]

    async def save(self, aggregate: A) -> None:
        """Write the aggregate if it changed, guarded by the token it was loaded with."""
        seen = self.loaded_token(aggregate)
        if self._token(aggregate) == seen:
            return
        if not await self._write(aggregate, expected=seen):
            raise await self._conflict(aggregate)
        self._tracked[id(aggregate)] = (aggregate, self._token(aggregate))

    def ensure_saved(self) -> None:
        for aggregate, seen in self._tracked.values():
            if self._token(aggregate) != seen:
                raise UnsavedChanges(f"{type(aggregate).__name__} changed but was not saved")

    def pull_events(self) -> list[DomainEvent]:
        events: list[DomainEvent] = []
        for aggregate, _ in self._tracked.values():
            events.extend(aggregate.pull_events())
        return events


class Transactor:
    """Runs service functions as units of work against one database."""

    # Whether :meth:`at_once` may be used: PostgreSQL runs a statement of several data-modifying
    # CTEs atomically; SQLite's dialect of mercato's statements has no such form.
    one_statement = False

    def __init__(self, db: Database, *, attempts: int = 5) -> None:
        self.db = db
        self.one_statement = db.dialect == "postgresql"
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

    async def __call__(
        self, work: Callable[[UnitOfWork], Awaitable[T]], *, generic_plans: bool = False
    ) -> T:
        """Run ``work`` in a unit of work and commit it with its events (``generic_plans``: see
        :func:`mercato.platform.db.run_in_transaction`)."""
        committed: list[DomainEvent] = []

        async def attempt(conn: Connection) -> T:
            uow = UnitOfWork(conn)
            result = await work(uow)
            events = uow.collect_events()
            if events:
                await outbox.append(conn, events)
            committed[:] = events
            return result

        result = await run_in_transaction(
            self.db,
            attempt,
            attempts=self.attempts,
            on_retry=self._retried,
            generic_plans=generic_plans,
        )
        self._committed(committed)
        return result

    async def at_once(
        self, work: Callable[[Connection], Awaitable[tuple[T, list[DomainEvent]]]]
    ) -> T:
        """Run a unit of work that is one statement, without BEGIN and COMMIT (PostgreSQL
        only: see :attr:`one_statement`); retried like any unit of work.

        ``work`` sends its single statement, which writes its own outbox rows, and returns its
        result with the events those rows hold (none when the statement changed nothing); the
        after-commit hooks get them, as for :meth:`__call__`.
        """
        written: list[DomainEvent] = []

        async def attempt(conn: Connection) -> T:
            result, events = await work(conn)
            written[:] = events
            return result

        result = await run_in_transaction(
            self.db, attempt, attempts=self.attempts, on_retry=self._retried, single_statement=True
        )
        self._committed(written)
        return result

    def _committed(self, events: list[DomainEvent]) -> None:
        if events:
            for hook in self._after_commit:
                hook(events)

    async def read(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run a read-only function on a pooled connection outside a transaction.

        The unit of work it gets is for repositories' queries only: nothing it records is
        written.
        """
        async with self.db.connection() as conn:
            return await work(UnitOfWork(conn))
