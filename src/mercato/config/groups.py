"""The settings, in groups: each group declares its fields, then the validators of its fields.

:class:`~mercato.config.settings.Settings` is made of these groups. A setting keeps its flat
name, so its variable is ``MERCATO_<NAME>`` whatever group declares it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

from mercato.kernel.money import Currency

DEFAULT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
STRIPE_API_BASE = "https://api.stripe.com"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Feature(StrEnum):
    """Feature flags: each is the setting ``feature_<value>`` (``MERCATO_FEATURE_<VALUE>``)."""

    API_DOCS = "api_docs"  # interactive docs at /docs and the OpenAPI document
    DISCOUNT_CODES = "discount_codes"  # customers may apply MERCATO_DISCOUNT_CODES to orders


class PaymentProviderName(StrEnum):
    """Who charges the cards (``MERCATO_PAYMENT_PROVIDER``)."""

    SANDBOX = "sandbox"  # built in, deterministic test cards, no money moves
    STRIPE = "stripe"  # Stripe's PaymentIntents API (mercato.payments.stripe)


class DatabaseSettings(BaseModel):
    """The database and the pool each process keeps."""

    database_url: str = "sqlite:///./mercato.db"
    database_pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    database_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0


class ServingSettings(BaseModel):
    """The HTTP server: where it listens, its processes, how it starts and stops."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    # Proxies trusted to name the client in X-Forwarded-For (addresses or networks, commas):
    # the client address is what login and discount-code throttling count by.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # How long an idle HTTP connection stays open. Longer than any proxy in front keeps its idle
    # connections to the server (ingress-nginx: 60 s), or the proxy sends a request on a
    # connection the server is just closing and its client gets a 502.
    keepalive_s: Annotated[int, Field(ge=1, le=3600)] = 75
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    run_workers: bool = True
    debug: bool = False
    fault_injection: bool = False
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 256 * 1024
    shutdown_drain_s: Annotated[float, Field(ge=0, le=300)] = 0.0
    shutdown_grace_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    # How each serving process runs Python's garbage collector (mercato.web.serve.GcPolicy).
    gc_freeze: bool = True
    gc_threshold: Annotated[int, Field(ge=100, le=10_000_000)] = 50_000
    feature_api_docs: bool = True
    feature_discount_codes: bool = True


class ObservabilitySettings(BaseModel):
    """Logs, metrics and traces."""

    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    metrics_enabled: bool = True
    # Where /metrics is served: 0 on the API port (dev, test); otherwise on this port only,
    # which the API's Service does not expose (staging and production).
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    metrics_dir: str = ""
    access_log: bool = True
    otlp_endpoint: str = ""
    otel_service_name: str = "mercato"
    trace_sample_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value.lower() not in ("console", "json"):
            raise ValueError("must be 'console' or 'json'")
        return value.lower()

    @field_validator("otlp_endpoint")
    @classmethod
    def _endpoint_is_http(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("otlp_endpoint must be an http:// or https:// URL (OTLP over HTTP)")
        return value


class SecuritySettings(BaseModel):
    """Tokens, password hashing and brute-force protection (docs/security.md)."""

    token_secret: SecretStr = SecretStr(DEFAULT_SECRET)
    token_ttl_s: Annotated[int, Field(ge=60, le=30 * 24 * 3600)] = 3600
    argon2_time_cost: Annotated[int, Field(ge=1, le=10)] = 2
    argon2_memory_kib: Annotated[int, Field(ge=8, le=1024 * 1024)] = 19 * 1024
    # Failures allowed per window, counted in the database. An account's count is cleared by
    # a successful login.
    login_max_failures: Annotated[int, Field(ge=1, le=1000)] = 10
    login_address_max_failures: Annotated[int, Field(ge=1, le=100_000)] = 100
    login_window_s: Annotated[float, Field(ge=1, le=24 * 3600)] = 900.0
    discount_max_failures: Annotated[int, Field(ge=1, le=1000)] = 10
    discount_address_max_failures: Annotated[int, Field(ge=1, le=100_000)] = 50
    discount_window_s: Annotated[float, Field(ge=1, le=24 * 3600)] = 900.0


class PaymentSettings(BaseModel):
    """Who charges the cards, and how long a checkout without an answer is left alone."""

    payment_provider: PaymentProviderName = PaymentProviderName.SANDBOX
    # Drills and benchmarks only: lets the production profile start with the sandbox provider
    # (warned about at every start and exported as mercato_sandbox_payments_override).
    allow_sandbox_payments_in_production: bool = False
    stripe_secret_key: SecretStr = SecretStr("")
    stripe_api_base: str = STRIPE_API_BASE
    stripe_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    # Stripe's client repeats a request that got no answer, with the same idempotency key.
    stripe_max_network_retries: Annotated[int, Field(ge=0, le=5)] = 1
    checkout_grace_s: Annotated[float, Field(ge=1, le=3600)] = 120.0

    @field_validator("payment_provider", mode="before")
    @classmethod
    def _provider_lowercase(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("stripe_api_base")
    @classmethod
    def _api_base_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("stripe_api_base must be an http:// or https:// URL")
        return value.rstrip("/")


class ShopSettings(BaseModel):
    """Prices, taxes, discount codes and shipping rates."""

    currency: str = "EUR"
    tax_rate_bp: Annotated[int, Field(ge=0, le=10_000)] = 1900
    discount_codes: dict[str, int] = Field(default_factory=lambda: {"WELCOME10": 10})
    shop_country: str = "DE"
    shipping_domestic_base: Annotated[int, Field(ge=0)] = 490
    shipping_domestic_per_kg: Annotated[int, Field(ge=0)] = 100
    shipping_international_base: Annotated[int, Field(ge=0)] = 1490
    shipping_international_per_kg: Annotated[int, Field(ge=0)] = 350
    free_shipping_from: Annotated[int, Field(ge=0)] = 0

    @field_validator("currency")
    @classmethod
    def _currency_known(cls, value: str) -> str:
        return Currency.validate(value)

    @field_validator("discount_codes")
    @classmethod
    def _discounts_valid(cls, value: dict[str, int]) -> dict[str, int]:
        for code, percent in value.items():
            if not 0 <= percent <= 100:
                raise ValueError(f"discount code {code!r}: percent must be 0-100")
        return {code.strip().upper(): percent for code, percent in value.items()}

    @field_validator("shop_country")
    @classmethod
    def _country_code(cls, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise ValueError("shop_country must be an ISO 3166-1 alpha-2 code")
        return value.upper()


class WorkSettings(BaseModel):
    """Background work: reservations, idempotency keys, the workers' pace."""

    reservation_ttl_s: Annotated[int, Field(ge=10, le=7 * 24 * 3600)] = 900
    idempotency_retention_s: Annotated[float, Field(ge=60, le=30 * 24 * 3600)] = 24 * 3600.0
    idempotency_wait_s: Annotated[float, Field(ge=0, le=60)] = 5.0
    idempotency_lease_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    worker_idle_s: Annotated[float, Field(gt=0, le=60)] = 1.0


class SearchSettings(BaseModel):
    """Product search (docs/search.md): the semantic half, its model and its batches."""

    # Off: lexical search only, no model loaded (the test suite's default).
    search_semantic: bool = True
    # Where the model's ONNX graph is kept once built; empty: $XDG_CACHE_HOME/mercato or
    # ~/.cache/mercato.
    search_cache_dir: str = ""
    search_batch: Annotated[int, Field(ge=1, le=1024)] = 64
    # onnxruntime's threads per process (0: one per core).
    search_threads: Annotated[int, Field(ge=0, le=64)] = 0
    # Vectors of the most recent distinct queries kept per process (1.5 KB each; 0: none): a
    # repeated query then costs a matrix product, not a pass through the model.
    search_query_cache: Annotated[int, Field(ge=0, le=1_000_000)] = 4096


class RealtimeSettings(BaseModel):
    """Following orders in real time (long polls and event streams), per process."""

    realtime_max_waiting: Annotated[int, Field(ge=0, le=1_000_000)] = 10_000
    realtime_max_wait_s: Annotated[float, Field(gt=0, le=300)] = 60.0
    realtime_heartbeat_s: Annotated[float, Field(ge=1, le=300)] = 15.0
    realtime_retry_ms: Annotated[int, Field(ge=0, le=600_000)] = 3000
    realtime_gap_timeout_s: Annotated[float, Field(gt=0, le=600)] = 5.0


class EventsSettings(BaseModel):
    """Events to other systems: the outbox published to NATS JetStream, and webhooks."""

    # Webhooks (docs/webhooks.md): may endpoints be on private addresses (dev and test only);
    # per-request timeout; requests in flight per process and per endpoint; how long an
    # endpoint may fail before it is disabled.
    webhook_private_addresses: bool = False
    webhook_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    webhook_concurrency: Annotated[int, Field(ge=1, le=1000)] = 32
    webhook_endpoint_concurrency: Annotated[int, Field(ge=1, le=100)] = 4
    webhook_disable_after_s: Annotated[float, Field(gt=0, le=30 * 24 * 3600)] = 5 * 24 * 3600.0
    # Events to NATS JetStream (docs/events.md): off unless events_nats_url is set. The stream
    # is created, or checked and updated, at start-up with this retention and these replicas.
    events_nats_url: str = ""
    events_nats_stream: str = "MERCATO"
    events_nats_subject_prefix: str = "mercato"
    events_nats_replicas: Annotated[int, Field(ge=1, le=5)] = 1
    events_nats_retention: Literal["limits", "interest", "workqueue"] = "limits"
    events_nats_max_age_s: Annotated[float, Field(ge=0, le=10 * 365 * 24 * 3600)] = 7 * 24 * 3600.0
    # JetStream drops a repeated Nats-Msg-Id within this window (the relay's duplicates).
    events_nats_duplicate_window_s: Annotated[float, Field(ge=1, le=7 * 24 * 3600)] = 600.0
    events_nats_batch: Annotated[int, Field(ge=1, le=10_000)] = 1000
    events_nats_in_flight: Annotated[int, Field(ge=1, le=20_000)] = 1000
    events_nats_ack_timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    events_nats_lease_s: Annotated[float, Field(ge=1, le=3600)] = 30.0

    @field_validator("events_nats_url")
    @classmethod
    def _nats_url(cls, value: str) -> str:
        for server in filter(None, (part.strip() for part in value.split(","))):
            if urlsplit(server).scheme not in ("nats", "tls"):
                raise ValueError("events_nats_url must be nats:// or tls:// URLs, commas between")
        return value.strip()

    @field_validator("events_nats_stream")
    @classmethod
    def _stream_name(cls, value: str) -> str:
        if not value or any(c in value for c in " .*>/\\") or not value.isprintable():
            raise ValueError("a JetStream stream name: no spaces, '.', '*', '>', '/' or '\\'")
        return value

    @field_validator("events_nats_subject_prefix")
    @classmethod
    def _subject_prefix(cls, value: str) -> str:
        tokens = value.split(".")
        if not all(t and t.isprintable() and not set(t) & set(" *>") for t in tokens):
            raise ValueError("subject tokens separated by '.', without spaces, '*' or '>'")
        return value
