"""Events to other systems: the outbox's JetStream publisher when one is configured, and the
webhook endpoints with the worker that delivers to them."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from mercato.catalog import events as catalog_events
from mercato.config import Profile, Settings
from mercato.customers import events as customer_events
from mercato.kernel.events import DomainEvent
from mercato.orders import events as order_events
from mercato.payments import events as payment_events
from mercato.platform.db import Database, is_postgres_url
from mercato.platform.metrics import Metrics
from mercato.platform.uow import Transactor
from mercato.webhooks import AddressGuard, WebhooksService
from mercato.webhooks import events as webhook_events
from mercato.webhooks.delivery import WebhookDispatcher
from mercato.webhooks.sender import WebhookSender

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


def webhooks_of(
    settings: Settings, transact: Transactor
) -> tuple[WebhooksService, WebhookDispatcher]:
    """Webhook endpoints and the worker that delivers to them (docs/webhooks.md)."""
    guard = AddressGuard(allow_private=settings.webhook_private_addresses)
    service = WebhooksService(
        transact,
        event_types=event_types(),
        guard=guard,
        require_https=settings.env not in (Profile.DEV, Profile.TEST),
    )
    sender = WebhookSender(
        guard, timeout_s=settings.webhook_timeout_s, max_connections=settings.webhook_concurrency
    )
    dispatcher = WebhookDispatcher(
        transact,
        sender,
        concurrency=settings.webhook_concurrency,
        per_endpoint=settings.webhook_endpoint_concurrency,
        disable_after=timedelta(seconds=settings.webhook_disable_after_s),
        # a claimed delivery waits in the queue for at most about one timeout, then its
        # request takes at most another: the lease leaves room to record the outcome
        lease=timedelta(seconds=2 * settings.webhook_timeout_s + 30),
    )
    return service, dispatcher


def event_types() -> frozenset[str]:
    """The name of every event a module publishes (what webhook endpoints may subscribe to)."""
    found = set()
    for module in (catalog_events, customer_events, order_events, payment_events, webhook_events):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, DomainEvent)
                and value.__module__ == module.__name__
                and DomainEvent not in value.__bases__
            ):
                found.add(value.__name__)
    return frozenset(found)
