"""The fake unit of work behaves like the real one where service tests rely on it."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

import pytest

from mercato.platform.uow import TrackingRepository, UnitOfWork, UnsavedChanges
from tests.fakes import FakeTransactor, fake_for, tables_of
from tests.integration.helpers import Pinged, VersionedThing

pytestmark = pytest.mark.anyio


class Things(TrackingRepository[VersionedThing]):
    """A repository whose real SQL no test here reaches."""

    versions: ClassVar[dict[str, int]] = {}

    def get(self, thing_id: str) -> VersionedThing:
        raise NotImplementedError("real SQL; replaced by the fake in these tests")

    def _token(self, aggregate: VersionedThing) -> Hashable:
        return aggregate.version

    async def _write(self, aggregate: VersionedThing, *, expected: Hashable) -> bool:
        raise NotImplementedError("real SQL; replaced by the fake in these tests")

    async def _conflict(self, aggregate: VersionedThing) -> Exception:
        return LookupError(aggregate.id)


@fake_for(Things)
class FakeThings(Things):
    def get(self, thing_id: str) -> VersionedThing:
        rows = tables_of(self._uow).setdefault("things", {})
        return self._track(VersionedThing(thing_id, rows.setdefault(thing_id, 1)))

    async def _write(self, aggregate: VersionedThing, *, expected: Hashable) -> bool:
        rows = tables_of(self._uow)["things"]
        if rows[aggregate.id] != expected:
            return False
        rows[aggregate.id] = aggregate.version
        return True


async def ping_and_save(uow: UnitOfWork, *, fail: bool = False) -> None:
    things = uow.repository(Things)
    thing = things.get("t1")
    thing.ping(1)
    await things.save(thing)
    if fail:
        raise RuntimeError("refused after the save")


async def test_a_committed_unit_of_work_keeps_its_rows_and_publishes_its_events() -> None:
    transact = FakeTransactor()
    await transact(ping_and_save)
    assert transact.tables["things"] == {"t1": 2}
    assert transact.events(Pinged) == [Pinged(thing_id="t1", n=1)]


async def test_a_failed_unit_of_work_leaves_no_row_and_no_event() -> None:
    transact = FakeTransactor()
    await transact(ping_and_save)
    with pytest.raises(RuntimeError):
        await transact(lambda uow: ping_and_save(uow, fail=True))
    assert transact.tables["things"] == {"t1": 2}
    assert len(transact.outbox) == 1


async def test_unsaved_changes_are_refused_as_by_the_real_unit_of_work() -> None:
    transact = FakeTransactor()

    async def forget_to_save(uow: UnitOfWork) -> None:
        uow.repository(Things).get("t1").ping(1)

    with pytest.raises(UnsavedChanges):
        await transact(forget_to_save)
    assert transact.outbox == []


async def test_a_repository_without_a_fake_is_named() -> None:
    class Unfaked(Things):
        pass

    with pytest.raises(LookupError, match="Unfaked"):
        await FakeTransactor()(lambda uow: _touch(uow, Unfaked))


async def _touch(uow: UnitOfWork, kind: type[Things]) -> None:
    uow.repository(kind)
