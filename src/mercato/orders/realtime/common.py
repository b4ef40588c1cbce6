"""What the long polls and the event streams of orders share."""

from __future__ import annotations

from typing import Any

from starlette.types import Scope

from mercato.orders.events import OrderEvent
from mercato.platform.notify import Change

AGGREGATE = "order"
EVENT_TYPES = frozenset(cls.__name__ for cls in OrderEvent.__subclasses__())
FINAL_EVENTS = frozenset({"OrderDelivered", "OrderCancelled"})
FINAL_STATUSES = frozenset({"delivered", "cancelled"})
MAX_ID = 36  # order ids are UUIDs


def app_state(scope: Scope) -> Any:
    """The application's state (services, settings, the notifier)."""
    return scope["app"].state


def version(change: Change) -> int:
    """The order version an event carries."""
    return int(change.payload.get("version", 0))
