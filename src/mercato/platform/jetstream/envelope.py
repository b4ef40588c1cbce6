"""The versioned envelope every event travels in on NATS, and its subject and message id.

An envelope is JSON::

    {"envelope_version": 1, "id": "...", "type": "OrderPlaced", "aggregate_type": "order",
     "aggregate_id": "...", "sequence": 42, "occurred_at": "2026-12-05T07:30:00.123456Z",
     "data": {...the event's own fields...}}

``id`` is a UUID derived from the outbox row (its sequence, aggregate, type and time), so every
relay and every retry of one event sends the same id: it is the ``Nats-Msg-Id`` JetStream
drops duplicates by, and what a consumer deduplicates by. A change that removes or renames a
field raises ``ENVELOPE_VERSION``; new fields may appear within a version. The JSON schema of
each event type is in docs/events/ (``mercato events schemas``).
"""

from __future__ import annotations

import uuid
from datetime import UTC

import orjson

from mercato.platform.outbox import OutboxEvent

ENVELOPE_VERSION = 1
# Fixed for ever: ids derived under another namespace would defeat deduplication.
_ID_NAMESPACE = uuid.UUID("6f1d2a7e-3c55-4d1e-9a57-0b1f6c2e8d41")


def event_id(event: OutboxEvent) -> str:
    """The event's stable id (the same for every relay and retry of this outbox row)."""
    name = f"{event.seq}/{event.aggregate_type}/{event.aggregate_id}/{event.event_type}/"
    return str(uuid.uuid5(_ID_NAMESPACE, name + event.occurred_at.astimezone(UTC).isoformat()))


def subject(prefix: str, event: OutboxEvent) -> str:
    """``<prefix>.<aggregate type>.<event type>``, e.g. ``mercato.order.OrderPlaced``."""
    return f"{prefix}.{event.aggregate_type}.{event.event_type}"


def envelope(event: OutboxEvent, *, id_: str | None = None) -> dict[str, object]:
    """The envelope of one outbox event, as a mapping."""
    return {
        "envelope_version": ENVELOPE_VERSION,
        "id": id_ or event_id(event),
        "type": event.event_type,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "sequence": event.seq,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": event.payload,
    }


def encode(event: OutboxEvent, id_: str) -> bytes:
    """The envelope as the message body."""
    return orjson.dumps(envelope(event, id_=id_))
