"""Every metric family mercato exports, registered in the registry of :class:`Metrics`.

Grouped by what they describe; :mod:`mercato.platform.metrics` records and renders them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# An API answers in milliseconds; the tail up to 10 s shows trouble. 0.5 is a bucket boundary
# because the HighLatency alert compares the p95 with it.
API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
# Order values in major currency units (euros, not cents).
ORDER_VALUE_BUCKETS = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class MetricFamilies:
    """The metric families, as attributes (``metrics.requests``, ``metrics.orders``, ...)."""

    def register(self, r: CollectorRegistry) -> None:
        """Create every family in ``r``."""
        self._http(r)
        self._business(r)
        self._operations(r)
        self._realtime(r)
        for outcome in ("captured", "declined", "failed", "refunded"):
            self.payments.labels(outcome)
        for event in ("placed", "confirmed", "shipped", "delivered", "cancelled"):
            self.orders.labels(event)

    def _http(self, r: CollectorRegistry) -> None:
        """HTTP requests and the process itself."""
        self.requests = Counter(
            "http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (long polls and streams excluded).",
            ["method", "route"],
            buckets=API_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "HTTP requests being answered now.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.process = Gauge(
            "mercato_process_up",
            "1 per live mercato server process (with a pid label in multiprocess mode).",
            multiprocess_mode="liveall",
            registry=r,
        )
        self.process.set(1)
        self.ready = Gauge(
            "mercato_ready",
            "1 while the process would answer /readyz with 200 (sampled at scrape time).",
            multiprocess_mode="livemostrecent",
            registry=r,
        )
        self.idempotent_replays = Counter(
            "mercato_idempotent_replays",
            "Responses replayed for a repeated Idempotency-Key.",
            registry=r,
        )

    def _business(self, r: CollectorRegistry) -> None:
        """What the business did: orders, payments, refusals."""
        self.orders = Counter(
            "mercato_orders",
            "Order state changes committed, by event (placed, confirmed, shipped, ...).",
            ["event"],
            registry=r,
        )
        self.order_value = Histogram(
            "mercato_order_value",
            "Total of each placed order in major currency units.",
            ["currency"],
            buckets=ORDER_VALUE_BUCKETS,
            registry=r,
        )
        self.payments = Counter(
            "mercato_payments",
            "Payments settled, by outcome (captured, declined, failed, refunded).",
            ["outcome"],
            registry=r,
        )
        self.domain_errors = Counter(
            "mercato_domain_errors",
            "Requests refused by a business rule, by error code (out_of_stock, ...).",
            ["code"],
            registry=r,
        )
        self.reservations_expired = Counter(
            "mercato_reservations_expired",
            "Stock reservations released because their checkout never settled.",
            registry=r,
        )
        self.sandbox_payments_override = Gauge(
            "mercato_sandbox_payments_override",
            "1 while the production profile takes test payments (the sandbox or a Stripe test "
            "key) because MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION is set; 0 otherwise.",
            multiprocess_mode="livemax",
            registry=r,
        )

    def _operations(self, r: CollectorRegistry) -> None:
        """The database, the outbox and the background workers."""
        self.transaction_retries = Counter(
            "mercato_transaction_retries",
            "Transactions re-run after a deadlock, serialization failure or busy database.",
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "mercato_outbox_backlog",
            "Outbox events not yet published (sampled at scrape time).",
            multiprocess_mode="livemostrecent",
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "mercato_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox event; 0 when there is none.",
            multiprocess_mode="livemostrecent",
            registry=r,
        )
        self.scrape_errors = Counter(
            "mercato_metrics_refresh_errors",
            "Scrape-time samples (e.g. the outbox backlog) that could not be taken.",
            registry=r,
        )
        self.worker_runs = Counter(
            "mercato_worker_runs",
            "Background worker batches, by worker and outcome (ok, failed).",
            ["worker", "outcome"],
            registry=r,
        )
        self.pool_connections = Gauge(
            "mercato_db_pool_connections",
            "PostgreSQL pool connections by state (in_use, idle, max), sampled every second.",
            ["state"],
            multiprocess_mode="livesum",
            registry=r,
        )

    def _realtime(self, r: CollectorRegistry) -> None:
        """Held long polls and streams, and the LISTEN connection that wakes them."""
        self.waiting_long_polls = Gauge(
            "mercato_waiting_long_polls",
            "Long-poll requests waiting for a change now.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.open_streams = Gauge(
            "mercato_open_streams",
            "Server-Sent Events streams open now.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.listener_state = Gauge(
            "mercato_notify_listener_state",
            "1 for the LISTEN connection's current state (PostgreSQL): connected; "
            "disconnected (reconnecting: followers on other replicas are woken only by the "
            "safety poll); idle (no follower waits, so nothing listens).",
            ["state"],
            multiprocess_mode="livemax",
            registry=r,
        )
        self.listener_connects = Counter(
            "mercato_notify_listener_connects",
            "Connections the LISTEN connection made (the first and every reconnect).",
            registry=r,
        )
