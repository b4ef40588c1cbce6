"""What other modules need of customers, as narrow protocols (what their fakes implement)."""

from __future__ import annotations

from typing import Protocol

from mercato.platform.uow import UnitOfWork


class CustomersForOrders(Protocol):
    """Customers as the orders module uses them: may this account order, now?"""

    async def ensure_can_order(self, uow: UnitOfWork, customer_id: str) -> None: ...
