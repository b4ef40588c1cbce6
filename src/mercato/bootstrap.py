"""The composition root: builds every module and platform part from Settings and wires them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from mercato import __version__, telemetry
from mercato.catalog import CatalogService
from mercato.catalog import events as catalog_events
from mercato.config import Feature, PaymentProviderName, Profile, Settings
from mercato.customers import CustomersService
from mercato.customers import events as customer_events
from mercato.customers.events import CustomerEvent
from mercato.kernel.events import DomainEvent
from mercato.orders import OrdersService, PricingService, ShippingCalculator, ShippingRates
from mercato.orders import events as order_events
from mercato.orders.service import CheckoutReconciler, ReservationSweeper
from mercato.payments import PaymentProvider, PaymentsService, SandboxProvider, StripeProvider
from mercato.payments import events as payment_events
from mercato.platform import outbox
from mercato.platform.backups import backup_age_sampler
from mercato.platform.connect import create_database
from mercato.platform.connection_metrics import connection_sampler
from mercato.platform.db import Database, is_postgres_url
from mercato.platform.idempotency import IdempotencyPurger, IdempotencyStore
from mercato.platform.metrics import Metrics
from mercato.platform.notify import OUTBOX_CHANNEL, Notifier
from mercato.platform.notify_postgres import PgListener
from mercato.platform.outbox import EventBus, OutboxRelay
from mercato.platform.security import Authenticator, PasswordHashing, TokenService
from mercato.platform.switches import Switches
from mercato.platform.throttle import Guard, Limit, Throttle, ThrottlePurger
from mercato.platform.tracing import Tracing
from mercato.platform.uow import Transactor
from mercato.platform.workers import Worker, WorkerRunner
from mercato.webhooks import AddressGuard, WebhooksService
from mercato.webhooks import events as webhook_events
from mercato.webhooks.delivery import WebhookDispatcher
from mercato.webhooks.sender import WebhookSender

log = logging.getLogger("mercato")


@dataclass
class Container:
    """Everything the application is made of, for one set of settings."""

    settings: Settings
    db: Database
    transact: Transactor
    bus: EventBus
    tokens: TokenService
    auth: Authenticator
    customers: CustomersService
    catalog: CatalogService
    payments: PaymentsService
    orders: OrdersService
    relay: OutboxRelay
    reconciler: CheckoutReconciler
    idempotency: IdempotencyStore
    discount_guard: Guard
    runner: WorkerRunner
    metrics: Metrics
    tracing: Tracing
    notifier: Notifier
    switches: Switches
    webhooks: WebhooksService
    dispatcher: WebhookDispatcher
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    started: bool = field(default=False)

    async def start(self, *, workers: bool | None = None) -> None:
        """Connect to the database and (unless told otherwise) start the background workers."""
        await self.db.connect()
        self.start_services()
        if self.settings.run_workers if workers is None else workers:
            self.runner.start()
        self.started = True

    def start_services(self) -> None:
        """Start what serves requests in this process: metric sampling, the waiting-client hub.

        Neither needs the database to be up now: both retry until it is.
        """
        self.metrics.start()
        self.notifier.start()

    def start_workers(self) -> None:
        """Start the background workers if the settings ask for them (after start-up checks)."""
        if self.settings.run_workers and not self.started:
            self.runner.start()
        self.started = True

    async def stop(self) -> None:
        """End waiting clients, stop workers after their current batch, close the database."""
        await self.notifier.stop()
        await self.runner.stop()
        await self.dispatcher.drain(self.settings.shutdown_grace_s)
        await self.db.close()
        for close in self.closers:
            await close()
        await self.metrics.stop()
        self.metrics.close()
        await asyncio.to_thread(self.tracing.shutdown)
        self.started = False


def build(settings: Settings, *, provider: PaymentProvider | None = None) -> Container:
    """Wire the application (no I/O happens here; :meth:`Container.start` connects)."""
    tracing = Tracing.create(
        endpoint=settings.otlp_endpoint,
        service_name=settings.otel_service_name,
        version=__version__,
        sample_ratio=settings.trace_sample_ratio,
        environment=settings.env.value,
    )
    db = tracing.wrap(
        create_database(
            settings.database_url,
            pool_size=settings.database_pool_size,
            timeout=settings.database_timeout_s,
        )
    )
    metrics = Metrics()
    transact = Transactor(db)
    bus = EventBus()
    tokens = TokenService(settings.token_secret.get_secret_value(), ttl_s=settings.token_ttl_s)
    hashing = PasswordHashing(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
    )
    throttle = Throttle(db, secret=settings.token_secret.get_secret_value())
    customers = CustomersService(
        transact, hashing=hashing, tokens=tokens, login_guard=_login_guard(settings, throttle)
    )
    auth = Authenticator(tokens, customers.account)
    # an account changed by this process is in force here at once, elsewhere within a second
    transact.after_commit(_forget_changed_accounts(auth))
    catalog = CatalogService(transact)
    closers: list[Callable[[], Awaitable[None]]] = []
    payments = PaymentsService(
        transact, provider=provider or _payment_provider(settings, metrics, closers)
    )
    pricing, shipping = pricing_rules(settings)
    orders = OrdersService(
        transact,
        catalog=catalog,
        customers=customers,
        payments=payments,
        pricing=pricing,
        shipping=shipping,
        currency=settings.currency,
        reservation_ttl_s=settings.reservation_ttl_s,
    )
    bus.subscribe("OrderCancelled", payments.on_order_cancelled)
    relay = OutboxRelay(db, bus)
    reconciler = CheckoutReconciler(orders, payments, grace_s=settings.checkout_grace_s)
    idempotency = IdempotencyStore(
        db, lease_s=settings.idempotency_lease_s, wait_s=settings.idempotency_wait_s
    )
    purger = IdempotencyPurger(idempotency, retention_s=settings.idempotency_retention_s)
    sweeper = ReservationSweeper(orders, catalog, payments)
    webhooks, dispatcher = _webhooks(settings, transact)
    bus.subscribe("*", webhooks.on_event)
    workers: list[Worker] = [relay, reconciler, sweeper, purger, ThrottlePurger(throttle)]
    runner = WorkerRunner(
        [*workers, dispatcher], idle=settings.worker_idle_s, on_run=metrics.worker_run
    )
    dispatcher.wake = webhooks.on_enqueued = lambda: runner.wake(dispatcher.name)
    transact.after_commit(lambda events: runner.wake(relay.name))
    transact.after_commit(telemetry.events_recorder(metrics))
    transact.on_retry(metrics.retried)
    metrics.on_scrape(lambda: _sample_outbox(db, metrics))
    switches = Switches(db, registry=metrics.registry)
    metrics.on_scrape(switches.refresh)
    metrics.on_scrape(backup_age_sampler(db, metrics.registry))
    notifier = _notifier(settings, db)
    metrics.on_flush(
        lambda: metrics.set_waiting(long_polls=notifier.waiting, streams=notifier.streams)
    )
    metrics.on_flush(connection_sampler(db, notifier.listener, metrics))
    transact.after_commit(lambda events: notifier.wake())
    return Container(
        settings=settings,
        db=db,
        transact=transact,
        bus=bus,
        tokens=tokens,
        auth=auth,
        customers=customers,
        catalog=catalog,
        payments=payments,
        orders=orders,
        relay=relay,
        reconciler=reconciler,
        idempotency=idempotency,
        discount_guard=_discount_guard(settings, throttle),
        runner=runner,
        metrics=metrics,
        tracing=tracing,
        notifier=notifier,
        switches=switches,
        webhooks=webhooks,
        dispatcher=dispatcher,
        closers=closers,
    )


def _webhooks(
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


def _payment_provider(
    settings: Settings, metrics: Metrics, closers: list[Callable[[], Awaitable[None]]]
) -> PaymentProvider:
    """The provider the settings choose; production on test payments is said out loud."""
    metrics.set_sandbox_override(settings.sandbox_override_active)
    if settings.sandbox_override_active:
        log.warning(
            "PRODUCTION IS TAKING TEST PAYMENTS (%s provider): "
            "MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION is set; no real money is charged",
            settings.payment_provider.value,
        )
    if settings.payment_provider is PaymentProviderName.STRIPE:
        stripe = StripeProvider(
            secret_key=settings.stripe_secret_key.get_secret_value(),
            api_base=settings.stripe_api_base,
            timeout_s=settings.stripe_timeout_s,
            max_network_retries=settings.stripe_max_network_retries,
        )
        closers.append(stripe.close)
        return stripe
    return SandboxProvider()


def _forget_changed_accounts(auth: Authenticator) -> Callable[[list[DomainEvent]], None]:
    def forget(events: list[DomainEvent]) -> None:
        for event in events:
            if isinstance(event, CustomerEvent):
                auth.forget(event.customer_id)

    return forget


def _login_guard(settings: Settings, throttle: Throttle) -> Guard:
    """Password guessing: per account (cleared by a successful login) and per client address."""
    window = settings.login_window_s
    return Guard(
        throttle,
        Limit("login-account", settings.login_max_failures, window, clear_on_success=True),
        Limit("login-address", settings.login_address_max_failures, window),
    )


def _discount_guard(settings: Settings, throttle: Throttle) -> Guard:
    """Discount-code guessing: per customer and per client address."""
    window = settings.discount_window_s
    return Guard(
        throttle,
        Limit("discount-customer", settings.discount_max_failures, window),
        Limit("discount-address", settings.discount_address_max_failures, window),
    )


def pricing_rules(settings: Settings) -> tuple[PricingService, ShippingCalculator]:
    """The pricing and shipping rules orders are priced with under these settings."""
    discount_codes = settings.discount_codes if settings.enabled(Feature.DISCOUNT_CODES) else {}
    pricing = PricingService(tax_rate_bp=settings.tax_rate_bp, discount_codes=discount_codes)
    shipping = ShippingCalculator(
        ShippingRates(
            home_country=settings.shop_country,
            domestic_base=settings.shipping_domestic_base,
            domestic_per_kg=settings.shipping_domestic_per_kg,
            international_base=settings.shipping_international_base,
            international_per_kg=settings.shipping_international_per_kg,
            free_from=settings.free_shipping_from,
        )
    )
    return pricing, shipping


async def _sample_outbox(db: Database, metrics: Metrics) -> None:
    count, oldest = await outbox.backlog(db)
    metrics.set_outbox_backlog(count, oldest)


def _notifier(settings: Settings, db: Database) -> Notifier:
    """The hub of waiting clients; on PostgreSQL woken across processes by LISTEN/NOTIFY."""
    postgres = is_postgres_url(settings.database_url)
    notifier = Notifier(
        db,
        max_waiting=settings.realtime_max_waiting,
        gap_timeout_s=settings.realtime_gap_timeout_s,
        heartbeat_s=settings.realtime_heartbeat_s,
        # Notifications cover PostgreSQL; on SQLite another process (mercato worker) may write.
        safety_poll_s=10.0 if postgres else 1.0,
    )
    if postgres:
        notifier.listener = PgListener(
            settings.database_url,
            channel=OUTBOX_CHANNEL,
            on_notify=notifier.wake,
            on_connect=notifier.wake,
            timeout=settings.database_timeout_s,
        )
    return notifier
