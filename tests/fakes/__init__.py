"""An in-memory unit of work for fast service tests: the business rules without SQL.

:class:`FakeTransactor` stands in for :class:`~mercato.platform.uow.Transactor`. It runs a
service's work in a :class:`FakeUnitOfWork` whose ``repository(Kind)`` answers with the fake
registered for ``Kind`` (a subclass of the real repository that keeps rows in
:attr:`FakeTransactor.tables` instead of a database). A unit of work is atomic like a
transaction: the tables are copied before the work and restored if it raises; the events it
commits are appended to :attr:`FakeTransactor.outbox`.

Each module's fakes live beside this file (``tests/fakes/<module>.py``) and register
themselves with :func:`fake_for`.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from mercato.kernel.events import DomainEvent
from mercato.platform.db import Connection
from mercato.platform.uow import AfterCommit, Repository, Transactor, UnitOfWork

T = TypeVar("T")
R = TypeVar("R", bound=Repository)

FAKES: dict[type[Repository], type[Repository]] = {}


def fake_for(real: type[Repository]) -> Callable[[type[R]], type[R]]:
    """Class decorator: register a fake as what ``uow.repository(real)`` answers in tests."""

    def register(fake: type[R]) -> type[R]:
        assert issubclass(fake, real), f"{fake.__name__} must subclass {real.__name__}"
        made = fake.__init__

        def keeping_the_unit_of_work(self: R, uow: UnitOfWork) -> None:
            # a fake's rows are its unit of work's tables, so it keeps the unit of work (a real
            # repository keeps only the connection: no cycle outlives a request)
            made(self, uow)
            self._uow = uow  # type: ignore[attr-defined]

        fake.__init__ = keeping_the_unit_of_work  # type: ignore[assignment,method-assign]
        FAKES[real] = fake
        return fake

    return register


class FakeUnitOfWork(UnitOfWork):
    """A unit of work over in-memory tables; it has no connection."""

    __slots__ = ("tables",)

    def __init__(self, tables: dict[str, Any]) -> None:
        super().__init__(cast(Connection, None))
        self.tables = tables

    def repository(self, kind: type[R]) -> R:
        found = self._repositories.get(kind)
        if found is None:
            fake = FAKES.get(kind)
            if fake is None:
                raise LookupError(f"no fake registered for {kind.__name__}")
            found = self._repositories[kind] = fake(self)
        return found  # type: ignore[return-value]


def tables_of(uow: UnitOfWork) -> dict[str, Any]:
    """The in-memory tables a fake repository works on."""
    assert isinstance(uow, FakeUnitOfWork), "fake repositories run only in a FakeUnitOfWork"
    return uow.tables


class FakeTransactor(Transactor):
    """Runs service functions against in-memory tables, atomically, recording the outbox."""

    def __init__(self) -> None:  # no database: nothing of Transactor.__init__ applies
        self.tables: dict[str, Any] = {}
        self.outbox: list[DomainEvent] = []
        self.units = 0
        self._after_commit: list[AfterCommit] = []
        self._on_retry: list[Callable[[int], None]] = []

    async def __call__(
        self, work: Callable[[UnitOfWork], Awaitable[T]], *, generic_plans: bool = False
    ) -> T:
        saved = copy.deepcopy(self.tables)  # generic_plans: a database's concern, none here
        uow = FakeUnitOfWork(self.tables)
        try:
            result = await work(uow)
            events = uow.collect_events()
        except BaseException:
            self.tables.clear()
            self.tables.update(saved)
            raise
        self.units += 1
        self.outbox.extend(events)
        self._committed(events)
        return result

    async def read(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        return await work(FakeUnitOfWork(self.tables))

    def events(self, event_type: type[DomainEvent] | None = None) -> list[DomainEvent]:
        """The committed events, optionally only those of one type."""
        return [e for e in self.outbox if event_type is None or isinstance(e, event_type)]
