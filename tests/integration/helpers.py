"""Building blocks for the integration tests: data made through the services, raw reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.catalog import Product
from mercato.catalog.store import reservations
from mercato.kernel.events import AggregateRoot, DomainEvent
from mercato.kernel.values import Address
from mercato.orders import NewLine, Order
from mercato.platform.db import Database, Row, sql
from mercato.platform.outbox import OutboxRelay, outbox
from mercato.platform.security import Principal, Role
from mercato.platform.uow import TrackingRepository
from tests.conftest import unique

ADDRESS = Address(street="Unter den Linden 1", city="Berlin", country="DE", postal_code="10117")
STAFF = Principal("00000000-0000-7000-8000-000000000001", Role.STAFF)

_OUTBOX_FOR = sql(
    sa.select(outbox)
    .where(outbox.c.aggregate_id == sa.bindparam("aggregate_id"))
    .order_by(outbox.c.seq)
)
_RESERVATIONS_FOR = sql(
    sa.select(reservations)
    .where(reservations.c.order_id == sa.bindparam("order_id"))
    .order_by(reservations.c.product_id)
)


@dataclass(frozen=True, kw_only=True)
class Pinged(DomainEvent):
    """A test event of a test aggregate."""

    aggregate_type = "test"
    aggregate_id_field = "thing_id"
    thing_id: str
    n: int


class Thing(AggregateRoot):
    """A minimal aggregate that records :class:`Pinged` events."""

    def __init__(self, thing_id: str) -> None:
        self.id = thing_id

    def ping(self, n: int) -> None:
        self.record(Pinged(thing_id=self.id, n=n))


async def customer(container: Container) -> Principal:
    """A freshly registered, active customer."""
    registered = await container.customers.register(
        email=f"{unique('c')}@example.com", password="correct horse battery", name="Test Customer"
    )
    return Principal(registered.id, Role.CUSTOMER)


async def product(
    container: Container, *, stock: int, price: int = 1000, weight: int = 500
) -> Product:
    """A fresh active product priced in EUR."""
    return await container.catalog.create_product(
        actor_id=STAFF.user_id,
        sku=unique("SKU").upper(),
        name="Widget",
        description="A test widget",
        price_amount=price,
        currency="EUR",
        weight_grams=weight,
        initial_stock=stock,
    )


async def draft(container: Container, owner: Principal, lines: dict[str, int]) -> Order:
    """A draft order with the given lines and a domestic shipping address."""
    return await container.orders.create(
        owner,
        lines=[NewLine(product_id, qty) for product_id, qty in lines.items()],
        shipping_address=ADDRESS,
    )


async def stock(container: Container, product_id: str) -> tuple[int, int, int]:
    """(available, reserved, sold) of a product, as staff see it."""
    shown = await container.catalog.product_view(product_id, staff=True)
    available, reserved, sold = (cast(int, shown[key]) for key in ("available", "reserved", "sold"))
    return available, reserved, sold


async def assert_stock_balances(container: Container, product_id: str) -> None:
    """The catalog invariant: every unit ever added is available, reserved or sold."""
    adjustments = await container.catalog.adjustments(product_id, after=None, limit=100)
    assert adjustments.next_cursor is None
    available, reserved, sold = await stock(container, product_id)
    assert min(available, reserved, sold) >= 0
    assert sum(a.delta for a in adjustments.items) == available + reserved + sold


async def outbox_rows(db: Database, aggregate_id: str) -> list[Row]:
    """The outbox rows of one aggregate, in sequence order."""
    async with db.connection() as conn:
        return await conn.fetch(_OUTBOX_FOR, aggregate_id=aggregate_id)


async def reservation_rows(db: Database, order_id: str) -> list[Row]:
    """The stock reservation rows of one order."""
    async with db.connection() as conn:
        return await conn.fetch(_RESERVATIONS_FOR, order_id=order_id)


async def relay_until(
    relay: OutboxRelay, done: Callable[[], Awaitable[bool]], *, rounds: int = 50
) -> None:
    """Run relay batches until ``done`` holds (each batch moves one event per aggregate)."""
    for _ in range(rounds):
        if await done():
            return
        await relay.run_once()
    assert await done(), f"not done after {rounds} relay batches"


class VersionedThing(Thing):
    """A :class:`Thing` with a version that every ping moves, as aggregates' versions do."""

    def __init__(self, thing_id: str, version: int = 1) -> None:
        super().__init__(thing_id)
        self.version = version

    def ping(self, n: int) -> None:
        super().ping(n)
        self.version += 1


class ThingConflict(Exception):
    """A save of a :class:`VersionedThing` lost a race."""


class ThingRepository(TrackingRepository[VersionedThing]):
    """A tracking repository over an in-process table (``rows``: id -> version), for testing
    the repository base without a schema of its own."""

    rows: ClassVar[dict[str, int]] = {}

    def get(self, thing_id: str) -> VersionedThing:
        return self._track(VersionedThing(thing_id, self.rows[thing_id]))

    def add(self, thing: VersionedThing) -> None:
        self.rows[thing.id] = thing.version
        self._track_new(thing)

    def _token(self, aggregate: VersionedThing) -> Hashable:
        return aggregate.version

    async def _write(self, aggregate: VersionedThing, *, expected: Hashable) -> bool:
        if self.rows.get(aggregate.id) != expected:
            return False
        self.rows[aggregate.id] = aggregate.version
        return True

    async def _conflict(self, aggregate: VersionedThing) -> Exception:
        return ThingConflict(aggregate.id, self.rows.get(aggregate.id))


def plan_access(plan: Any, table: str) -> set[str]:
    """How an EXPLAIN (FORMAT JSON) plan reads ``table``: each scan's index, or its node type
    (``Seq Scan``) where it uses none."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if plan.get("Relation Name") == table and "Scan" in plan["Node Type"]:
            found.add(str(plan.get("Index Name", plan["Node Type"])))
        for value in plan.values():
            found |= plan_access(value, table)
    elif isinstance(plan, list):
        for value in plan:
            found |= plan_access(value, table)
    return found
