"""What the long polls and the event streams of orders share."""

from __future__ import annotations

from typing import Protocol

from mercato.orders.events import OrderEvent
from mercato.orders.service import OrdersService
from mercato.platform.event_log import Change
from mercato.platform.notify import Notifier
from mercato.platform.security import Authenticator
from mercato.platform.switches import Switches

AGGREGATE = "order"
EVENT_TYPES = frozenset(cls.__name__ for cls in OrderEvent.__subclasses__())
FINAL_EVENTS = frozenset({"OrderDelivered", "OrderCancelled"})
FINAL_STATUSES = frozenset({"delivered", "cancelled"})


class Limits(Protocol):
    """The settings following orders reads."""

    @property
    def realtime_max_wait_s(self) -> float: ...

    @property
    def realtime_retry_ms(self) -> int: ...


class State(Protocol):
    """What following orders reads from the application's state."""

    settings: Limits
    orders: OrdersService
    notifier: Notifier
    auth: Authenticator
    switches: Switches


def version(change: Change) -> int:
    """The order version an event carries."""
    return int(change.payload.get("version", 0))


def conditional_headers(version: int) -> dict[str, str]:
    """An order's version as its ETag; caches may keep it but must revalidate (cheaply)."""
    return {"ETag": f'"{version}"', "Cache-Control": "no-cache"}
