"""The NATS relay's metrics: what it published, what failed, and how far behind it is."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from mercato.kernel.clock import utcnow
from mercato.platform.db import Database
from mercato.platform.jetstream import claims


class RelayMetrics:
    """Counters the relay updates as it goes, and the lag sampled at scrape time."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.published = Counter(
            "mercato_events_nats_published",
            "Outbox events JetStream acknowledged (duplicates included).",
            registry=registry,
        )
        self.duplicates = Counter(
            "mercato_events_nats_duplicates",
            "Acknowledged events JetStream had already stored (dropped by Nats-Msg-Id).",
            registry=registry,
        )
        self.failures = Counter(
            "mercato_events_nats_publish_failures",
            "Events whose publish failed and will be retried, by reason.",
            ["reason"],
            registry=registry,
        )
        self.connected = Gauge(
            "mercato_events_nats_connected",
            "1 while this process's relay has a NATS connection, 0 otherwise.",
            multiprocess_mode="livemax",
            registry=registry,
        )
        self.backlog = Gauge(
            "mercato_events_nats_backlog",
            "Outbox events JetStream has not acknowledged yet (sampled at scrape time).",
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.lag = Gauge(
            "mercato_events_nats_lag_seconds",
            "Age of the oldest outbox event JetStream has not acknowledged; 0 when none.",
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        for reason in ("timeout", "disconnected", "rejected"):
            self.failures.labels(reason)  # exported at 0 before the first failure

    def sampler(self, db: Database) -> Callable[[], Awaitable[None]]:
        """A scrape-time refresher for the backlog and the lag."""

        async def sample() -> None:
            count, oldest = await claims.lag(db)
            self.backlog.set(count)
            age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
            self.lag.set(max(age, 0.0))

        return sample
