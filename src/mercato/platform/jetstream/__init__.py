"""Outbox events to NATS JetStream (docs/events.md): on when ``MERCATO_EVENTS_NATS_URL`` is set."""

from __future__ import annotations

from mercato.platform.jetstream.envelope import ENVELOPE_VERSION, envelope, event_id, subject
from mercato.platform.jetstream.metrics import RelayMetrics
from mercato.platform.jetstream.relay import BrokerUnavailable, NatsRelay
from mercato.platform.jetstream.stream import Link, StreamMismatch, StreamSettings, ensure_stream

__all__ = [
    "ENVELOPE_VERSION",
    "BrokerUnavailable",
    "Link",
    "NatsRelay",
    "RelayMetrics",
    "StreamMismatch",
    "StreamSettings",
    "ensure_stream",
    "envelope",
    "event_id",
    "subject",
]
