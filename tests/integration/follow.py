"""Helpers for tests of following orders: a recording follower and placed orders."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mercato.bootstrap import Container
from mercato.customers import Role
from mercato.kernel.values import Address
from mercato.orders import NewLine, Order
from mercato.platform.event_log import Change
from mercato.platform.security import Principal
from mercato.platform.security import Role as TokenRole
from tests.conftest import unique

SUCCESS_CARD = "4242 4242 4242 4242"
ADDRESS = Address(street="Hauptstrasse 1", city="Berlin", country="DE")


async def eventually(condition: Callable[[], object], *, within: float = 5.0) -> None:
    """Wait until ``condition()`` holds, looking every 10 ms; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.01)


class Recorder:
    """A follower that keeps what it is given."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.ended = False
        self.beats = 0
        self._news = asyncio.Event()

    def deliver(self, change: Change) -> None:
        self.changes.append(change)
        self._news.set()

    def end(self) -> None:
        self.ended = True
        self._news.set()

    def beat(self) -> None:
        self.beats += 1

    @property
    def types(self) -> list[str]:
        return [c.event_type for c in self.changes]

    async def wait_for(self, count: int, *, within: float = 5.0) -> list[Change]:
        """Wait until at least ``count`` changes arrived; fail after ``within`` seconds."""
        async with asyncio.timeout(within):
            while len(self.changes) < count:
                self._news.clear()
                await self._news.wait()
        return self.changes


async def staff(container: Container) -> Principal:
    account = await container.customers.register(
        email=f"{unique('s')}@example.com", password="staff password", name="S", role=Role.STAFF
    )
    return Principal(account.id, TokenRole.STAFF)


async def customer(container: Container) -> Principal:
    account = await container.customers.register(
        email=f"{unique('c')}@example.com", password="customer password", name="C"
    )
    return Principal(account.id, TokenRole.CUSTOMER)


async def drafts(
    container: Container, owner: Principal, clerk: Principal, count: int = 1
) -> list[Order]:
    """``count`` draft orders of ``owner``, each for one unit of one new product in stock."""
    product = await container.catalog.create_product(
        actor_id=clerk.user_id,
        sku=unique("P").upper(),
        name="Followed",
        description="",
        price_amount=1000,
        currency="EUR",
        weight_grams=100,
        initial_stock=count,
    )
    return [
        await container.orders.create(
            owner, lines=[NewLine(product.id, 1)], shipping_address=ADDRESS
        )
        for _ in range(count)
    ]


async def placed_orders(
    container: Container, owner: Principal, clerk: Principal, count: int = 1
) -> list[Order]:
    """``count`` orders of one product, placed and paid by ``owner``."""
    return [
        await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
        for order in await drafts(container, owner, clerk, count)
    ]
