"""What other modules need of the catalog, as narrow protocols (what their fakes implement)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from mercato.catalog.domain import ReservedLine
from mercato.platform.uow import UnitOfWork


class StockForOrders(Protocol):
    """The catalog as the orders module uses it: product snapshots and stock movements, each
    inside the orders module's unit of work, plus the sweeper's query."""

    async def describe_for_order(self, uow: UnitOfWork, product_id: str) -> ReservedLine: ...

    async def reserve(
        self, uow: UnitOfWork, order_id: str, quantities: dict[str, int], *, expires_at: datetime
    ) -> list[ReservedLine]: ...

    async def commit_reservation(self, uow: UnitOfWork, order_id: str) -> None: ...

    async def release_reservation(
        self, uow: UnitOfWork, order_id: str, *, expired: bool = False
    ) -> None: ...

    async def return_stock(self, uow: UnitOfWork, order_id: str) -> None: ...

    async def expired_reservations(self, *, limit: int) -> list[str]: ...
