"""Typed settings from ``MERCATO_*`` variables, files and per-environment profiles.

Where a value comes from, highest priority first:

1. arguments passed to ``Settings(...)`` (tests, embedding);
2. an environment variable ``MERCATO_<NAME>``;
3. a file named by ``MERCATO_<NAME>_FILE`` (Docker and Compose secrets);
4. a file ``<name>`` (or ``MERCATO_<NAME>``) in the folder ``MERCATO_SECRETS_DIR``, the way
   Kubernetes mounts a Secret as a volume;
5. the profile chosen by ``MERCATO_ENV`` (``dev``, ``test``, ``staging``, ``production``), see
   :data:`~mercato.config.profiles.PROFILES`;
6. the field's own default.

:meth:`Settings.describe` says, for every setting, which of these supplied it
(``mercato config show``). The staging and production profiles refuse to start without their
required settings or with the built-in (or a short) token secret, and production also refuses
unsafe values, the sandbox payment provider among them, with one message that lists every
problem (:class:`~mercato.config.sources.ConfigurationError`, from the checks at the end).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mercato.config.groups import (
    DEFAULT_SECRET,
    DatabaseSettings,
    EventsSettings,
    Feature,
    ObservabilitySettings,
    PaymentProviderName,
    PaymentSettings,
    RealtimeSettings,
    SearchSettings,
    SecuritySettings,
    ServingSettings,
    ShopSettings,
    WorkSettings,
)
from mercato.config.profiles import REQUIRED, Profile
from mercato.config.sources import (
    PREFIX,
    ConfigurationError,
    FileVariableSource,
    ProfileSource,
    Recorded,
    SecretsDirSource,
    Source,
    env_name,
    recording,
)

# Stripe's search index lags writes by up to a minute; the reconciler must not ask sooner.
STRIPE_MIN_CHECKOUT_GRACE_S = 60.0


@dataclass(frozen=True)
class Described:
    """One line of ``mercato config show``."""

    name: str
    variable: str
    value: str
    source: Source


class Settings(
    BaseSettings,
    EventsSettings,
    RealtimeSettings,
    SearchSettings,
    WorkSettings,
    ShopSettings,
    PaymentSettings,
    SecuritySettings,
    ObservabilitySettings,
    ServingSettings,
    DatabaseSettings,
):
    """Every knob mercato has, by group. Each is read from ``MERCATO_<NAME>`` (see above)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    env: Profile = Profile.DEV

    _sources: dict[str, Source] = PrivateAttr(default_factory=dict)

    @field_validator("env", mode="before")
    @classmethod
    def _profile_lowercase(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    def __init__(self, **values: Any) -> None:
        with recording() as recorded:
            super().__init__(**values)
        self._sources = {
            name: recorded.get(name, Source.DEFAULT) for name in type(self).model_fields
        }
        problems = _problems(self)
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
            Recorded(init_settings, Source.ARGUMENT),
            Recorded(env_settings, Source.ENV),
            Recorded(FileVariableSource(settings_cls), Source.FILE),
            Recorded(SecretsDirSource(settings_cls), Source.SECRETS_DIR),
            Recorded(ProfileSource(settings_cls), Source.PROFILE),
        )

    def source_of(self, name: str) -> Source:
        """Where the named setting's value came from."""
        return self._sources[name]

    def enabled(self, feature: Feature) -> bool:
        """Whether a feature flag is on (``MERCATO_FEATURE_<NAME>``, default per profile)."""
        return bool(getattr(self, f"feature_{feature.value}"))

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


def _shown(name: str, value: Any) -> str:
    if name == "events_nats_url" and isinstance(value, str):
        return _without_credentials(value)
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


def _without_credentials(urls: str) -> str:
    """NATS server URLs, commas between, with any user password or token masked."""
    shown = []
    for url in urls.split(","):
        scheme, _, rest = url.partition("://")
        credentials, at, host = rest.rpartition("@")
        if at:
            user, colon, _ = credentials.partition(":")
            credentials = f"{user}:**********" if colon else "**********"
            url = f"{scheme}://{credentials}@{host}"
        shown.append(url)
    return ",".join(shown)


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


def _problems(settings: Settings) -> list[str]:
    """Everything that keeps these settings from being used in their profile."""
    found = [
        f"{env_name(name)} is required in the {settings.env.value} profile "
        f"(set it, {env_name(name)}_FILE, or a '{name}' file in MERCATO_SECRETS_DIR)"
        for name in REQUIRED.get(settings.env, ())
        if settings.source_of(name) in (Source.DEFAULT, Source.PROFILE)
    ]
    found += payment_problems(settings)
    if settings.env is Profile.STAGING:
        found += _secret_problems(settings)
    found += metrics_port_problems(settings)
    if settings.env is Profile.PRODUCTION:
        found += production_problems(settings)
    return found


def payment_problems(settings: Settings) -> list[str]:
    """What keeps the chosen payment provider from working, in any profile."""
    if settings.payment_provider is not PaymentProviderName.STRIPE:
        return []
    found = []
    if not settings.stripe_secret_key.get_secret_value():
        found.append(
            "MERCATO_STRIPE_SECRET_KEY is required with MERCATO_PAYMENT_PROVIDER=stripe "
            "(set it, MERCATO_STRIPE_SECRET_KEY_FILE, or a 'stripe_secret_key' file in "
            "MERCATO_SECRETS_DIR)"
        )
    if (
        settings.env in (Profile.STAGING, Profile.PRODUCTION)
        and settings.checkout_grace_s < STRIPE_MIN_CHECKOUT_GRACE_S
    ):
        found.append(
            f"MERCATO_CHECKOUT_GRACE_S must be at least {STRIPE_MIN_CHECKOUT_GRACE_S:g} "
            "with Stripe: its search, which finds unanswered charges, lags up to a minute"
        )
    return found


def metrics_port_problems(settings: Settings) -> list[str]:
    """Metrics (revenue, payment failures) must not be public where the API is."""
    if not settings.metrics_enabled:
        return []
    if settings.metrics_port == 0 and settings.env in (Profile.STAGING, Profile.PRODUCTION):
        return [
            f"MERCATO_METRICS_PORT must be a port of its own in the {settings.env.value} "
            "profile: 0 would serve /metrics on the public API port"
        ]
    if settings.metrics_port == settings.port:
        return ["MERCATO_METRICS_PORT must differ from MERCATO_PORT"]
    return []


def production_problems(settings: Settings) -> list[str]:
    """Everything that makes these settings unsafe for production."""
    found = []
    if settings.debug:
        found.append("MERCATO_DEBUG must be false")
    defaulted = settings.source_of("database_url") is Source.DEFAULT
    if not defaulted and settings.database_url.startswith("sqlite"):
        found.append("MERCATO_DATABASE_URL must point at PostgreSQL, not SQLite")
    found += _secret_problems(settings)
    if settings.fault_injection:
        found.append("MERCATO_FAULT_INJECTION must be off")
    if settings.webhook_private_addresses:
        found.append(
            "MERCATO_WEBHOOK_PRIVATE_ADDRESSES must be off: webhooks would reach the shop's own "
            "network"
        )
    found += _stripe_production_problems(settings)
    return found


def _stripe_production_problems(settings: Settings) -> list[str]:
    found = []
    stripe = settings.payment_provider is PaymentProviderName.STRIPE
    if stripe and not _private_url(settings.stripe_api_base):
        found.append(
            "MERCATO_STRIPE_API_BASE must be an https:// URL: the secret key travels with "
            "every request"
        )
    if settings.takes_test_payments and not settings.allow_sandbox_payments_in_production:
        found.append(
            "MERCATO_PAYMENT_PROVIDER must be stripe with a live key: the sandbox and "
            "Stripe test keys take no real money (for drills and benchmarks only, set "
            "MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION=true)"
        )
    return found


def _secret_problems(settings: Settings) -> list[str]:
    """The token secret must not be the built-in one nor short (staging and production)."""
    if settings.source_of("token_secret") is Source.DEFAULT:
        return []  # reported as missing
    secret = settings.token_secret.get_secret_value()
    if secret == DEFAULT_SECRET or len(secret) < 32:
        return ["MERCATO_TOKEN_SECRET must be a random value of 32+ characters, not the default"]
    return []


def _private_url(url: str) -> bool:
    """An https URL, or plain http that never leaves this machine."""
    parts = urlsplit(url)
    return parts.scheme == "https" or parts.hostname in ("127.0.0.1", "::1", "localhost")
