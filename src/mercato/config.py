"""Typed settings from ``MERCATO_*`` variables, files and per-environment profiles.

Where a value comes from, highest priority first:

1. arguments passed to ``Settings(...)`` (tests, embedding);
2. an environment variable ``MERCATO_<NAME>``;
3. a file named by ``MERCATO_<NAME>_FILE`` (Docker and Compose secrets);
4. a file ``<name>`` (or ``MERCATO_<NAME>``) in the folder ``MERCATO_SECRETS_DIR``, the way
   Kubernetes mounts a Secret as a volume;
5. the profile chosen by ``MERCATO_ENV`` (``dev``, ``test``, ``staging``, ``production``), see
   :data:`PROFILES`;
6. the field's own default.

:meth:`Settings.describe` says, for every setting, which of these supplied it
(``mercato config show``). The staging and production profiles refuse to start without their
required settings or with the built-in (or a short) token secret, and production also refuses
unsafe values, the sandbox payment provider among them, with one message that lists every
problem (:class:`ConfigurationError`).
"""

from __future__ import annotations

import json
import os
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mercato.kernel.money import Currency

DEFAULT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
STRIPE_API_BASE = "https://api.stripe.com"
# Stripe's search index lags writes by up to a minute; the reconciler must not ask sooner.
STRIPE_MIN_CHECKOUT_GRACE_S = 60.0
PREFIX = "MERCATO_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Profile(StrEnum):
    DEV = "dev"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class Feature(StrEnum):
    """Feature flags: each is the setting ``feature_<value>`` (``MERCATO_FEATURE_<VALUE>``)."""

    API_DOCS = "api_docs"  # interactive docs at /docs and the OpenAPI document
    DISCOUNT_CODES = "discount_codes"  # customers may apply MERCATO_DISCOUNT_CODES to orders


class PaymentProviderName(StrEnum):
    """Who charges the cards (``MERCATO_PAYMENT_PROVIDER``)."""

    SANDBOX = "sandbox"  # built in, deterministic test cards, no money moves
    STRIPE = "stripe"  # Stripe's PaymentIntents API (mercato.payments.stripe)


class Source(StrEnum):
    """Where a setting's value came from."""

    ARGUMENT = "argument"
    ENV = "env"
    FILE = "file"
    SECRETS_DIR = "secrets-dir"
    PROFILE = "profile"
    DEFAULT = "default"


# The configuration matrix of the multi-environment pipeline (docs/deployment.md). A value
# here replaces the field default for that profile; a variable or file still overrides it.
PROFILES: dict[Profile, dict[str, Any]] = {
    Profile.DEV: {
        "debug": True,
        "log_level": "DEBUG",
        "log_format": "console",
        "replicas_hint": 1,
        "shutdown_drain_s": 0.0,
        "shutdown_grace_s": 10.0,
        "feature_api_docs": True,
        "feature_discount_codes": True,
        "webhook_private_addresses": True,  # local receivers while developing
    },
    Profile.TEST: {
        "debug": False,
        "log_level": "INFO",
        "log_format": "console",
        "replicas_hint": 1,
        "shutdown_drain_s": 0.0,
        "shutdown_grace_s": 10.0,
        "feature_api_docs": True,
        "feature_discount_codes": True,
        "webhook_private_addresses": True,  # local receivers while developing
    },
    Profile.STAGING: {
        "debug": False,
        "log_level": "INFO",
        "log_format": "json",
        "host": "0.0.0.0",  # in a container the pod network is the boundary
        "metrics_port": 9100,  # metrics are never served on the public API port
        "replicas_hint": 3,
        "shutdown_drain_s": 5.0,
        "shutdown_grace_s": 20.0,
        "feature_api_docs": True,
        "feature_discount_codes": True,
    },
    Profile.PRODUCTION: {
        "debug": False,
        "log_level": "WARNING",
        "log_format": "json",
        "host": "0.0.0.0",
        "metrics_port": 9100,
        "replicas_hint": 10,
        "shutdown_drain_s": 5.0,
        "shutdown_grace_s": 20.0,
        "feature_api_docs": False,
        "feature_discount_codes": True,
    },
}

# Settings a profile cannot do without: they must come from a variable, a file or an argument.
REQUIRED: dict[Profile, tuple[str, ...]] = {
    Profile.STAGING: ("database_url", "token_secret"),
    Profile.PRODUCTION: ("database_url", "token_secret"),
}

_SOURCES: ContextVar[dict[str, Source] | None] = ContextVar(
    "mercato_settings_sources", default=None
)


class ConfigurationError(ValueError):
    """The settings cannot be used; ``problems`` lists every reason, one line each."""

    def __init__(self, profile: str, problems: list[str]) -> None:
        self.profile = profile
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid configuration for profile {profile!r}:\n{lines}")


def env_name(field: str) -> str:
    """The environment variable of a setting: ``token_secret`` -> ``MERCATO_TOKEN_SECRET``."""
    return PREFIX + field.upper()


def _environ() -> dict[str, str]:
    # variable names are case-insensitive, as in pydantic-settings' own environment source
    return {key.upper(): value for key, value in os.environ.items()}


def _read_secret(path: Path, *, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigurationError(
            _environ().get("MERCATO_ENV", "dev"), [f"{what}: cannot read {path}: {exc.strerror}"]
        ) from None


class _FileSource(PydanticBaseSettingsSource):
    """Shared parts of the two file sources: complex values (dicts) are JSON, like variables."""

    source: ClassVar[Source]

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # values are looked up all at once in __call__

    def _found(self) -> dict[str, str]:
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        found = self._found()
        return {
            name: self.prepare_field_value(name, self.settings_cls.model_fields[name], value, False)
            for name, value in found.items()
        }


class FileVariableSource(_FileSource):
    """``MERCATO_<NAME>_FILE=/path``: the setting is the content of that file."""

    source = Source.FILE

    def _found(self) -> dict[str, str]:
        environ = _environ()
        found = {}
        both = []
        for name in self.settings_cls.model_fields:
            path = environ.get(env_name(name) + "_FILE")
            if path:
                found[name] = _read_secret(Path(path), what=env_name(name) + "_FILE")
                if env_name(name) in environ:
                    both.append(f"set {env_name(name)} or {env_name(name)}_FILE, not both")
        if both:
            raise ConfigurationError(environ.get("MERCATO_ENV", "dev"), both)
        return found


class SecretsDirSource(_FileSource):
    """Files in ``MERCATO_SECRETS_DIR`` named after a setting (``token_secret``) or its variable."""

    source = Source.SECRETS_DIR

    def _found(self) -> dict[str, str]:
        folder = _environ().get("MERCATO_SECRETS_DIR")
        if not folder:
            return {}
        root = Path(folder)
        if not root.is_dir():
            raise ConfigurationError(
                _environ().get("MERCATO_ENV", "dev"),
                [f"MERCATO_SECRETS_DIR: {folder} is not a folder"],
            )
        found = {}
        for name in self.settings_cls.model_fields:
            for candidate in (root / name, root / env_name(name)):
                if candidate.is_file():
                    found[name] = _read_secret(candidate, what=f"secret {candidate.name}")
                    break
        return found


class ProfileSource(PydanticBaseSettingsSource):
    """The defaults of the profile that the higher-priority sources selected."""

    source = Source.PROFILE

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        chosen = self.current_state.get("env", Profile.DEV)
        try:
            profile = Profile(str(chosen).lower())
        except ValueError:
            return {}  # the field validator reports the unknown profile
        return dict(PROFILES[profile])


class _Recorded(PydanticBaseSettingsSource):
    """Wraps a source and notes which settings it supplied first (sources run by priority)."""

    def __init__(self, inner: PydanticBaseSettingsSource, source: Source) -> None:
        super().__init__(inner.settings_cls)
        self.inner = inner
        self.source = source

    def _set_current_state(self, state: dict[str, Any]) -> None:
        self.inner._set_current_state(state)

    def _set_settings_sources_data(self, states: dict[str, dict[str, Any]]) -> None:
        self.inner._set_settings_sources_data(states)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = self.inner()
        recorded = _SOURCES.get()
        if recorded is not None:
            for key in values:
                recorded.setdefault(key, self.source)
        return values


@dataclass(frozen=True)
class Described:
    """One line of ``mercato config show``."""

    name: str
    variable: str
    value: str
    source: Source


class Settings(BaseSettings):
    """Every knob mercato has. Each is read from ``MERCATO_<NAME>`` (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    env: Profile = Profile.DEV
    database_url: str = "sqlite:///./mercato.db"
    database_pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    database_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0

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
    replicas_hint: Annotated[int, Field(ge=1, le=1000)] = 1
    run_workers: bool = True
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    debug: bool = False
    fault_injection: bool = False
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 256 * 1024
    shutdown_drain_s: Annotated[float, Field(ge=0, le=300)] = 0.0
    shutdown_grace_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    # How each serving process runs Python's garbage collector (mercato.serve.GcPolicy).
    gc_freeze: bool = True
    gc_threshold: Annotated[int, Field(ge=100, le=10_000_000)] = 50_000

    feature_api_docs: bool = True
    feature_discount_codes: bool = True

    token_secret: SecretStr = SecretStr(DEFAULT_SECRET)
    token_ttl_s: Annotated[int, Field(ge=60, le=30 * 24 * 3600)] = 3600
    argon2_time_cost: Annotated[int, Field(ge=1, le=10)] = 2
    argon2_memory_kib: Annotated[int, Field(ge=8, le=1024 * 1024)] = 19 * 1024

    payment_provider: PaymentProviderName = PaymentProviderName.SANDBOX
    # Drills and benchmarks only: lets the production profile start with the sandbox provider
    # (warned about at every start and exported as mercato_sandbox_payments_override).
    allow_sandbox_payments_in_production: bool = False
    stripe_secret_key: SecretStr = SecretStr("")
    stripe_api_base: str = STRIPE_API_BASE
    stripe_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    # Stripe's client repeats a request that got no answer, with the same idempotency key.
    stripe_max_network_retries: Annotated[int, Field(ge=0, le=5)] = 1

    currency: str = "EUR"
    tax_rate_bp: Annotated[int, Field(ge=0, le=10_000)] = 1900
    discount_codes: dict[str, int] = Field(default_factory=lambda: {"WELCOME10": 10})
    shop_country: str = "DE"
    shipping_domestic_base: Annotated[int, Field(ge=0)] = 490
    shipping_domestic_per_kg: Annotated[int, Field(ge=0)] = 100
    shipping_international_base: Annotated[int, Field(ge=0)] = 1490
    shipping_international_per_kg: Annotated[int, Field(ge=0)] = 350
    free_shipping_from: Annotated[int, Field(ge=0)] = 0

    reservation_ttl_s: Annotated[int, Field(ge=10, le=7 * 24 * 3600)] = 900
    idempotency_retention_s: Annotated[float, Field(ge=60, le=30 * 24 * 3600)] = 24 * 3600.0
    idempotency_wait_s: Annotated[float, Field(ge=0, le=60)] = 5.0
    idempotency_lease_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    checkout_grace_s: Annotated[float, Field(ge=1, le=3600)] = 120.0
    worker_idle_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    # Brute-force protection (docs/security.md): failures allowed per window, counted in the
    # database. An account's count is cleared by a successful login.
    login_max_failures: Annotated[int, Field(ge=1, le=1000)] = 10
    login_address_max_failures: Annotated[int, Field(ge=1, le=100_000)] = 100
    login_window_s: Annotated[float, Field(ge=1, le=24 * 3600)] = 900.0
    discount_max_failures: Annotated[int, Field(ge=1, le=1000)] = 10
    discount_address_max_failures: Annotated[int, Field(ge=1, le=100_000)] = 50
    discount_window_s: Annotated[float, Field(ge=1, le=24 * 3600)] = 900.0

    _sources: dict[str, Source] = PrivateAttr(default_factory=dict)

    def __init__(self, **values: Any) -> None:
        token = _SOURCES.set({})
        try:
            super().__init__(**values)
            recorded = _SOURCES.get() or {}
        finally:
            _SOURCES.reset(token)
        self._sources = {
            name: recorded.get(name, Source.DEFAULT) for name in type(self).model_fields
        }
        problems = self.problems()
        if problems:
            raise ConfigurationError(self.env.value, problems)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            _Recorded(init_settings, Source.ARGUMENT),
            _Recorded(env_settings, Source.ENV),
            _Recorded(FileVariableSource(settings_cls), Source.FILE),
            _Recorded(SecretsDirSource(settings_cls), Source.SECRETS_DIR),
            _Recorded(ProfileSource(settings_cls), Source.PROFILE),
        )

    @field_validator("env", "payment_provider", mode="before")
    @classmethod
    def _choice_lowercase(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

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

    metrics_enabled: bool = True
    # Where /metrics is served: 0 on the API port (dev, test); otherwise on this port only,
    # which the API's Service does not expose (staging and production).
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    metrics_dir: str = ""
    access_log: bool = True
    otlp_endpoint: str = ""
    otel_service_name: str = "mercato"
    trace_sample_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0
    # Following orders in real time (long polls and event streams), per process.
    realtime_max_waiting: Annotated[int, Field(ge=0, le=1_000_000)] = 10_000
    realtime_max_wait_s: Annotated[float, Field(gt=0, le=300)] = 60.0
    realtime_heartbeat_s: Annotated[float, Field(ge=1, le=300)] = 15.0
    realtime_retry_ms: Annotated[int, Field(ge=0, le=600_000)] = 3000
    realtime_gap_timeout_s: Annotated[float, Field(gt=0, le=600)] = 5.0
    # Webhooks (docs/webhooks.md): may endpoints be on private addresses (dev and test only);
    # per-request timeout; requests in flight per process and per endpoint; how long an
    # endpoint may fail before it is disabled.
    webhook_private_addresses: bool = False
    webhook_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0
    webhook_concurrency: Annotated[int, Field(ge=1, le=1000)] = 32
    webhook_endpoint_concurrency: Annotated[int, Field(ge=1, le=100)] = 4
    webhook_disable_after_s: Annotated[float, Field(gt=0, le=30 * 24 * 3600)] = 5 * 24 * 3600.0

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

    @field_validator("otlp_endpoint")
    @classmethod
    def _endpoint_is_http(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("otlp_endpoint must be an http:// or https:// URL (OTLP over HTTP)")
        return value

    @field_validator("stripe_api_base")
    @classmethod
    def _api_base_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("stripe_api_base must be an http:// or https:// URL")
        return value.rstrip("/")

    def source_of(self, name: str) -> Source:
        """Where the named setting's value came from."""
        return self._sources[name]

    def enabled(self, feature: Feature) -> bool:
        """Whether a feature flag is on (``MERCATO_FEATURE_<NAME>``, default per profile)."""
        return bool(getattr(self, f"feature_{feature.value}"))

    def problems(self) -> list[str]:
        """Everything that keeps these settings from being used in their profile."""
        problems = [
            f"{env_name(name)} is required in the {self.env.value} profile "
            f"(set it, {env_name(name)}_FILE, or a '{name}' file in MERCATO_SECRETS_DIR)"
            for name in REQUIRED.get(self.env, ())
            if self._sources.get(name, Source.DEFAULT) in (Source.DEFAULT, Source.PROFILE)
        ]
        problems += self.payment_problems()
        if self.env is Profile.STAGING:
            problems += self._secret_problems()
        problems += self.metrics_port_problems()
        if self.env is Profile.PRODUCTION:
            problems += self.production_problems()
        return problems

    def payment_problems(self) -> list[str]:
        """What keeps the chosen payment provider from working, in any profile."""
        if self.payment_provider is not PaymentProviderName.STRIPE:
            return []
        problems = []
        if not self.stripe_secret_key.get_secret_value():
            problems.append(
                "MERCATO_STRIPE_SECRET_KEY is required with MERCATO_PAYMENT_PROVIDER=stripe "
                "(set it, MERCATO_STRIPE_SECRET_KEY_FILE, or a 'stripe_secret_key' file in "
                "MERCATO_SECRETS_DIR)"
            )
        if (
            self.env in (Profile.STAGING, Profile.PRODUCTION)
            and self.checkout_grace_s < STRIPE_MIN_CHECKOUT_GRACE_S
        ):
            problems.append(
                f"MERCATO_CHECKOUT_GRACE_S must be at least {STRIPE_MIN_CHECKOUT_GRACE_S:g} "
                "with Stripe: its search, which finds unanswered charges, lags up to a minute"
            )
        return problems

    def metrics_port_problems(self) -> list[str]:
        """Metrics (revenue, payment failures) must not be public where the API is."""
        if not self.metrics_enabled:
            return []
        if self.metrics_port == 0 and self.env in (Profile.STAGING, Profile.PRODUCTION):
            return [
                f"MERCATO_METRICS_PORT must be a port of its own in the {self.env.value} "
                "profile: 0 would serve /metrics on the public API port"
            ]
        if self.metrics_port == self.port:
            return ["MERCATO_METRICS_PORT must differ from MERCATO_PORT"]
        return []

    def production_problems(self) -> list[str]:
        """Everything that makes these settings unsafe for production."""
        problems = []
        if self.debug:
            problems.append("MERCATO_DEBUG must be false")
        missing = self._defaulted(REQUIRED[Profile.PRODUCTION])
        if "database_url" not in missing and self.database_url.startswith("sqlite"):
            problems.append("MERCATO_DATABASE_URL must point at PostgreSQL, not SQLite")
        problems += self._secret_problems()
        if self.fault_injection:
            problems.append("MERCATO_FAULT_INJECTION must be off")
        if self.webhook_private_addresses:
            problems.append(
                "MERCATO_WEBHOOK_PRIVATE_ADDRESSES must be off: webhooks would reach the "
                "shop's own network"
            )
        if self.payment_provider is PaymentProviderName.STRIPE and not _private_url(
            self.stripe_api_base
        ):
            problems.append(
                "MERCATO_STRIPE_API_BASE must be an https:// URL: the secret key travels with "
                "every request"
            )
        if self.takes_test_payments and not self.allow_sandbox_payments_in_production:
            problems.append(
                "MERCATO_PAYMENT_PROVIDER must be stripe with a live key: the sandbox and "
                "Stripe test keys take no real money (for drills and benchmarks only, set "
                "MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION=true)"
            )
        return problems

    @property
    def takes_test_payments(self) -> bool:
        """Whether checkouts are charged by a provider that moves no real money."""
        if self.payment_provider is PaymentProviderName.SANDBOX:
            return True
        return self.stripe_secret_key.get_secret_value().startswith(("sk_test_", "rk_test_"))

    @property
    def sandbox_override_active(self) -> bool:
        """Production taking test payments because an operator explicitly allowed it."""
        return self.env is Profile.PRODUCTION and self.takes_test_payments

    def _defaulted(self, names: tuple[str, ...]) -> set[str]:
        return set(names) & {
            name for name, source in self._sources.items() if source is Source.DEFAULT
        }

    def _secret_problems(self) -> list[str]:
        """The token secret must not be the built-in one nor short (staging and production)."""
        if self._defaulted(("token_secret",)):
            return []  # reported as missing
        secret = self.token_secret.get_secret_value()
        if secret == DEFAULT_SECRET or len(secret) < 32:
            return [
                "MERCATO_TOKEN_SECRET must be a random value of 32+ characters, not the default"
            ]
        return []

    def redacted(self) -> dict[str, Any]:
        """The settings as a mapping with secrets masked."""
        return {
            key: ("**********" if isinstance(value, SecretStr) else value)
            for key, value in self.model_dump().items()
        }

    def describe(self) -> list[Described]:
        """Every setting with its variable, its value (secrets masked) and its source."""
        return [
            Described(name, env_name(name), _shown(name, value), self._sources[name])
            for name, value in self.redacted().items()
        ]


def _private_url(url: str) -> bool:
    """An https URL, or plain http that never leaves this machine."""
    parts = urlsplit(url)
    return parts.scheme == "https" or parts.hostname in ("127.0.0.1", "::1", "localhost")


def _shown(name: str, value: Any) -> str:
    if name == "database_url" and isinstance(value, str) and "@" in value:
        scheme, rest = value.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:**********@{host}" if ":" in credentials else value
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, dict | list | bool):
        return json.dumps(value)
    return str(value)


def explain(error: ValidationError | ConfigurationError) -> str:
    """A readable message naming every bad setting by its variable."""
    if isinstance(error, ConfigurationError):
        return str(error)
    lines = []
    for item in error.errors():
        name = str(item["loc"][0]) if item.get("loc") else "settings"
        reason = item["msg"].removeprefix("Value error, ")
        lines.append(f"  - {name} ({env_name(name)}): {reason}")
    return "invalid configuration:\n" + "\n".join(lines)
