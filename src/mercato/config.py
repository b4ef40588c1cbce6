"""Typed settings from ``MERCATO_*`` environment variables, with per-profile validation."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mercato.kernel.money import Currency

DEFAULT_SECRET = "dev-only-secret-change-me-0123456789abcdef"


class Profile(StrEnum):
    DEV = "dev"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Every knob mercato has. Each is read from ``MERCATO_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="MERCATO_", extra="ignore", frozen=True, secrets_dir=None
    )

    env: Profile = Profile.DEV
    database_url: str = "sqlite:///./mercato.db"
    database_pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    database_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    run_workers: bool = True
    log_level: str = "INFO"
    log_format: str = "console"
    debug: bool = False
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 256 * 1024

    token_secret: SecretStr = SecretStr(DEFAULT_SECRET)
    token_ttl_s: Annotated[int, Field(ge=60, le=30 * 24 * 3600)] = 3600
    argon2_time_cost: Annotated[int, Field(ge=1, le=10)] = 2
    argon2_memory_kib: Annotated[int, Field(ge=8, le=1024 * 1024)] = 19 * 1024

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

    # Following orders in real time (long polls and event streams), per process.
    realtime_max_waiting: Annotated[int, Field(ge=0, le=1_000_000)] = 10_000
    realtime_max_wait_s: Annotated[float, Field(gt=0, le=300)] = 60.0
    realtime_heartbeat_s: Annotated[float, Field(ge=1, le=300)] = 15.0
    realtime_retry_ms: Annotated[int, Field(ge=0, le=600_000)] = 3000
    realtime_gap_timeout_s: Annotated[float, Field(gt=0, le=600)] = 5.0

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

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.env is not Profile.PRODUCTION:
            return self
        problems = self.production_problems()
        if problems:
            raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    def production_problems(self) -> list[str]:
        """Everything that makes these settings unfit for production."""
        problems = []
        if self.debug:
            problems.append("MERCATO_DEBUG must be false")
        if self.database_url.startswith("sqlite"):
            problems.append("MERCATO_DATABASE_URL must point at PostgreSQL, not SQLite")
        secret = self.token_secret.get_secret_value()
        if secret == DEFAULT_SECRET or len(secret) < 32:
            problems.append("MERCATO_TOKEN_SECRET must be set to a random value of 32+ characters")
        return problems

    def redacted(self) -> dict[str, Any]:
        """The settings as a mapping with secrets masked."""
        return {
            key: ("**********" if isinstance(value, SecretStr) else value)
            for key, value in self.model_dump().items()
        }
