"""Events to other systems: the outbox's JetStream publisher, when one is configured."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mercato.config import Settings
from mercato.platform.db import Database, is_postgres_url
from mercato.platform.metrics import Metrics

if TYPE_CHECKING:
    from mercato.platform.jetstream import NatsRelay


def nats_relay_of(settings: Settings, db: Database, metrics: Metrics) -> NatsRelay | None:
    """The JetStream publisher (docs/events.md), or None when no NATS server is configured."""
    if not settings.events_nats_url:
        return None
    # imported here: nats-py costs every process start ~0.1 s, and most run without NATS
    from mercato.platform.jetstream import Link, NatsRelay, RelayMetrics, StreamSettings

    link = Link(
        StreamSettings(
            servers=settings.events_nats_url.split(","),
            name=settings.events_nats_stream,
            subject_prefix=settings.events_nats_subject_prefix,
            replicas=settings.events_nats_replicas,
            retention=settings.events_nats_retention,
            max_age_s=settings.events_nats_max_age_s,
            duplicate_window_s=settings.events_nats_duplicate_window_s,
            ack_timeout_s=settings.events_nats_ack_timeout_s,
            in_flight=settings.events_nats_in_flight,
        )
    )
    relay_metrics = RelayMetrics(metrics.registry)
    metrics.on_scrape(relay_metrics.sampler(db))
    return NatsRelay(
        db,
        link,
        relay_metrics,
        batch=settings.events_nats_batch,
        lease_s=settings.events_nats_lease_s,
        postgres=is_postgres_url(settings.database_url),
    )
