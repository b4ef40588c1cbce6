"""Domain events and the aggregate base that records them.

Events are frozen dataclasses of primitives. An aggregate records them as its state changes;
the unit of work pulls them and writes them to the outbox in the same transaction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """Something that happened in the domain.

    Subclasses set ``aggregate_type`` and name the field that holds the aggregate's id in
    ``aggregate_id_field`` (each module's base event class does both, once).
    """

    aggregate_type: ClassVar[str] = ""
    aggregate_id_field: ClassVar[str] = ""

    @property
    def event_type(self) -> str:
        """The event's name, e.g. 'OrderPlaced'."""
        return type(self).__name__

    @property
    def aggregate_id(self) -> str:
        """The id of the aggregate the event belongs to: the field ``aggregate_id_field`` names."""
        name = self.aggregate_id_field
        if name not in self.__dataclass_fields__:
            raise TypeError(f"{self.event_type} names no field as its aggregate id: {name!r}")
        return str(getattr(self, name))

    def payload(self) -> dict[str, Any]:
        """The event's fields as a JSON-ready mapping."""
        return dataclasses.asdict(self)


class AggregateRoot:
    """Base for aggregates: records domain events until the unit of work pulls them.

    Works with dataclass aggregates: the event list lives in the instance dict, created on
    first use, so subclasses need not call an ``__init__`` of ours.
    """

    def record(self, event: DomainEvent) -> None:
        """Record that something happened to this aggregate."""
        self.__dict__.setdefault("_pending_events", []).append(event)

    def pull_events(self) -> list[DomainEvent]:
        """Hand over the recorded events and forget them."""
        events: list[DomainEvent] = self.__dict__.pop("_pending_events", [])
        return events

    @property
    def pending_events(self) -> tuple[DomainEvent, ...]:
        """The events recorded and not yet pulled (for tests and assertions)."""
        return tuple(self.__dict__.get("_pending_events", ()))
