"""The composition root: builds every module and platform part from Settings and wires them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from mercato import __version__
from mercato.bootstrap import business_metrics
from mercato.bootstrap import search as search_wiring
from mercato.bootstrap.events import nats_relay_of, webhooks_of
from mercato.catalog import CatalogService
from mercato.catalog.service.semantic import SemanticIndex
from mercato.config import Feature, PaymentProviderName, Settings
from mercato.customers import CustomersService
from mercato.customers.events import CustomerEvent
from mercato.kernel.events import DomainEvent
from mercato.orders import OrdersService, PricingService, ShippingCalculator, ShippingRates
from mercato.orders.service import CheckoutReconciler, ReservationSweeper
from mercato.payments import PaymentProvider, PaymentsService, SandboxProvider, StripeProvider
from mercato.platform import outbox
from mercato.platform.backups import backup_age_sampler
from mercato.platform.connect import create_database
from mercato.platform.connection_metrics import connection_sampler
from mercato.platform.db import Database, is_postgres_url
from mercato.platform.idempotency_store import IdempotencyPurger, IdempotencyStore
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
from mercato.webhooks import WebhooksService
from mercato.webhooks.delivery import WebhookDispatcher

if TYPE_CHECKING:
    from mercato.platform.jetstream import NatsRelay

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
    nats_relay: NatsRelay | None = None  # outbox to JetStream, when MERCATO_EVENTS_NATS_URL is set

    @property
    def semantic(self) -> SemanticIndex | None:
        """Search by meaning, when MERCATO_SEARCH_SEMANTIC is on (bootstrap/search.py)."""
        return cast(SemanticIndex | None, self.catalog.search.semantic)

    async def start(self, *, workers: bool | None = None) -> None:
        """Start this process: metric sampling and the waiting-client hub, the database, then
        the background workers when ``workers`` (by default: when the settings run them).

        Sampling and the hub need no database (both retry until it is up), so they run even
        when connecting raises ``DatabaseUnavailable``. Starting again starts only what is not
        running yet: the application starts once with ``workers=False`` and once more when its
        start-up checks pass. ``started`` says the workers were decided on.

        Every entry point goes through here and :meth:`stop`: the HTTP application's lifespan,
        ``mercato worker`` (``workers=True``) and the one-off commands (``workers=False``).
        """
        self.metrics.start()
        self.notifier.start()
        await self.db.connect()
        if workers is False:
            return
        if (self.settings.run_workers if workers is None else workers) and not self.started:
            self.runner.start()
        if self.semantic is not None:
            self.semantic.model.start()  # in a thread: searches meanwhile are lexical
        self.started = True

    async def stop(self) -> None:
        """End waiting clients, stop workers after their current batch, close the database."""
        await self.notifier.stop()
        await self.runner.stop()
        await self.dispatcher.drain(self.settings.shutdown_grace_s)
        if self.semantic is not None:
            await self.semantic.close()
        await self.db.close()
        for close in self.closers:
            await close()
        await self.metrics.stop()
        self.metrics.close()
        await asyncio.to_thread(self.tracing.shutdown)
        self.started = False


def build(settings: Settings, *, provider: PaymentProvider | None = None) -> Container:
    """Wire the application (no I/O happens here; :meth:`Container.start` connects)."""
    tracing = _tracing(settings)
    db = tracing.wrap(_database(settings))
    metrics, transact = Metrics(), Transactor(db)
    secret = settings.token_secret.get_secret_value()
    tokens, throttle = TokenService(secret, ttl_s=settings.token_ttl_s), Throttle(db, secret=secret)
    customers, auth = _accounts(settings, transact, tokens, throttle)
    catalog = CatalogService(transact)
    closers: list[Callable[[], Awaitable[None]]] = []
    payments = _payments(settings, transact, metrics, closers, provider)
    orders = _orders(settings, transact, catalog, customers, payments)
    background = _background(settings, transact, orders, catalog, payments, throttle, metrics)
    notifier, switches = _notifier(settings, db), Switches(db, registry=metrics.registry)
    _observe(db, transact, metrics, background, notifier, switches)
    return Container(
        settings=settings,
        db=db,
        transact=transact,
        bus=background.bus,
        tokens=tokens,
        auth=auth,
        customers=customers,
        catalog=catalog,
        payments=payments,
        orders=orders,
        relay=background.relay,
        reconciler=background.reconciler,
        idempotency=background.idempotency,
        discount_guard=_discount_guard(settings, throttle),
        runner=background.runner,
        metrics=metrics,
        tracing=tracing,
        notifier=notifier,
        switches=switches,
        closers=closers + background.closers,
        nats_relay=background.nats_relay,
        webhooks=background.webhooks,
        dispatcher=background.dispatcher,
    )


def _database(settings: Settings) -> Database:
    return create_database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        timeout=settings.database_timeout_s,
    )


def _tracing(settings: Settings) -> Tracing:
    return Tracing.create(
        endpoint=settings.otlp_endpoint,
        service_name=settings.otel_service_name,
        version=__version__,
        sample_ratio=settings.trace_sample_ratio,
        environment=settings.env.value,
    )


def _accounts(
    settings: Settings, transact: Transactor, tokens: TokenService, throttle: Throttle
) -> tuple[CustomersService, Authenticator]:
    """The customers module, and the authenticator that asks it who may act."""
    hashing = PasswordHashing(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
    )
    login_guard = _login_guard(settings, throttle)
    customers = CustomersService(transact, hashing=hashing, tokens=tokens, login_guard=login_guard)
    auth = Authenticator(tokens, customers.account, lookup_many=customers.accounts)
    # an account changed by this process is in force here at once, elsewhere within a second
    transact.after_commit(_forget_changed_accounts(auth))
    return customers, auth


def _payments(
    settings: Settings,
    transact: Transactor,
    metrics: Metrics,
    closers: list[Callable[[], Awaitable[None]]],
    provider: PaymentProvider | None,
) -> PaymentsService:
    return PaymentsService(
        transact, provider=provider or _payment_provider(settings, metrics, closers)
    )


def _orders(
    settings: Settings,
    transact: Transactor,
    catalog: CatalogService,
    customers: CustomersService,
    payments: PaymentsService,
) -> OrdersService:
    pricing, shipping = pricing_rules(settings)
    return OrdersService(
        transact,
        catalog=catalog,
        customers=customers,
        payments=payments,
        pricing=pricing,
        shipping=shipping,
        currency=settings.currency,
        reservation_ttl_s=settings.reservation_ttl_s,
    )


@dataclass(frozen=True, slots=True)
class _Background:
    """The background workers, and the runner that runs them."""

    bus: EventBus  # what the outbox relay hands committed events to
    relay: OutboxRelay
    reconciler: CheckoutReconciler
    idempotency: IdempotencyStore
    runner: WorkerRunner
    nats_relay: NatsRelay | None  # the outbox to JetStream, when MERCATO_EVENTS_NATS_URL is set
    webhooks: WebhooksService
    dispatcher: WebhookDispatcher
    closers: list[Callable[[], Awaitable[None]]]
    semantic: SemanticIndex | None


def _background(
    settings: Settings,
    transact: Transactor,
    orders: OrdersService,
    catalog: CatalogService,
    payments: PaymentsService,
    throttle: Throttle,
    metrics: Metrics,
) -> _Background:
    db, bus = transact.db, EventBus()
    bus.subscribe("OrderCancelled", payments.on_order_cancelled)
    relay = OutboxRelay(db, bus)
    reconciler = CheckoutReconciler(orders, payments, grace_s=settings.checkout_grace_s)
    idempotency = IdempotencyStore(
        db, lease_s=settings.idempotency_lease_s, wait_s=settings.idempotency_wait_s
    )
    purger = IdempotencyPurger(idempotency, retention_s=settings.idempotency_retention_s)
    sweeper = ReservationSweeper(orders, catalog, payments)
    webhooks, dispatcher = webhooks_of(settings, transact)
    bus.subscribe("*", webhooks.on_event)
    workers: list[Worker] = [relay, reconciler, sweeper, purger, ThrottlePurger(throttle)]
    semantic = search_wiring.wire(settings, transact, catalog, bus, workers)
    nats_relay = nats_relay_of(settings, db, metrics)
    workers += [nats_relay, dispatcher] if nats_relay else [dispatcher]
    runner = WorkerRunner(workers, idle=settings.worker_idle_s, on_run=metrics.worker_run)
    dispatcher.wake = webhooks.on_enqueued = lambda: runner.wake(dispatcher.name)
    search_wiring.wake_with(semantic, runner)
    closers: list[Callable[[], Awaitable[None]]] = [nats_relay.close] if nats_relay else []
    queues = (relay, reconciler, idempotency, runner, nats_relay, webhooks, dispatcher, closers)
    return _Background(bus, *queues, semantic)


def _observe(
    db: Database,
    transact: Transactor,
    metrics: Metrics,
    background: _Background,
    notifier: Notifier,
    switches: Switches,
) -> None:
    """What happens after a commit, and what a scrape or a flush of the metrics samples."""
    relay, runner = background.relay, background.runner
    transact.after_commit(lambda events: runner.wake(relay.name))
    if (nats_relay := background.nats_relay) is not None:
        transact.after_commit(lambda events: runner.wake(nats_relay.name))
    transact.after_commit(business_metrics.events_recorder(metrics))
    transact.on_retry(metrics.retried)
    metrics.on_scrape(lambda: _sample_outbox(db, metrics))
    metrics.on_scrape(switches.refresh)
    metrics.on_scrape(backup_age_sampler(db, metrics.registry))
    metrics.on_flush(
        lambda: metrics.set_waiting(long_polls=notifier.waiting, streams=notifier.streams)
    )
    metrics.on_flush(connection_sampler(db, notifier.listener, metrics))
    transact.after_commit(lambda events: notifier.wake())


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
