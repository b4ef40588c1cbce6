"""Settings: profiles, where values come from, secrets from files, the production refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from mercato.config import (
    DEFAULT_SECRET,
    PROFILES,
    ConfigurationError,
    Feature,
    PaymentProviderName,
    Profile,
    Settings,
    Source,
    explain,
)

GOOD_SECRET = "k" * 40
PG = "postgresql://mercato@db.internal:5432/mercato"
LIVE_KEY = "sk_live_" + "x" * 40
SANDBOX_REFUSED = (
    "MERCATO_PAYMENT_PROVIDER must be stripe with a live key: the sandbox and Stripe test keys "
    "take no real money (for drills and benchmarks only, set "
    "MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION=true)"
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("MERCATO_"):
            monkeypatch.delenv(name)


def test_each_profile_brings_its_defaults_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().env is Profile.DEV
    for profile in (Profile.DEV, Profile.STAGING, Profile.PRODUCTION):
        monkeypatch.setenv("MERCATO_ENV", profile.value)
        monkeypatch.setenv("MERCATO_DATABASE_URL", PG)
        monkeypatch.setenv("MERCATO_TOKEN_SECRET", GOOD_SECRET)
        monkeypatch.setenv("MERCATO_PAYMENT_PROVIDER", "stripe")
        monkeypatch.setenv("MERCATO_STRIPE_SECRET_KEY", LIVE_KEY)
        settings = Settings()
        for name, value in PROFILES[profile].items():
            assert getattr(settings, name) == value, (profile, name)
            assert settings.source_of(name) is Source.PROFILE
        assert settings.source_of("tax_rate_bp") is Source.DEFAULT
    dev, production = PROFILES[Profile.DEV], PROFILES[Profile.PRODUCTION]
    assert (dev["debug"], dev["log_level"]) == (True, "DEBUG")
    assert (production["debug"], production["log_level"]) == (False, "WARNING")


def test_every_setting_can_be_overridden_and_precedence_holds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "tax_rate_bp").write_text("100\n")
    (secrets / "MERCATO_PORT").write_text("7000\n")
    (secrets / "shop_country").write_text("fr")
    monkeypatch.setenv("MERCATO_SECRETS_DIR", str(secrets))
    port_file = tmp_path / "port"
    port_file.write_text("7100\n")
    monkeypatch.setenv("MERCATO_PORT_FILE", str(port_file))
    monkeypatch.setenv("MERCATO_SHOP_COUNTRY", "at")
    monkeypatch.setenv("MERCATO_LOG_LEVEL", "error")  # beats the dev profile's DEBUG
    settings = Settings(workers=3)
    assert (settings.workers, settings.source_of("workers")) == (3, Source.ARGUMENT)
    assert (settings.shop_country, settings.source_of("shop_country")) == ("AT", Source.ENV)
    assert (settings.port, settings.source_of("port")) == (7100, Source.FILE)
    assert (settings.tax_rate_bp, settings.source_of("tax_rate_bp")) == (100, Source.SECRETS_DIR)
    assert (settings.log_level, settings.source_of("log_level")) == ("ERROR", Source.ENV)


def test_a_secret_file_is_read_without_its_trailing_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "token"
    secret.write_text(GOOD_SECRET + "\n")
    monkeypatch.setenv("MERCATO_TOKEN_SECRET_FILE", str(secret))
    monkeypatch.setenv("MERCATO_DISCOUNT_CODES_FILE", str(tmp_path / "codes"))
    (tmp_path / "codes").write_text('{"spring": 15}')
    settings = Settings()
    assert settings.token_secret.get_secret_value() == GOOD_SECRET
    assert settings.discount_codes == {"SPRING": 15}  # JSON, like the variable


def test_a_missing_file_or_both_forms_at_once_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MERCATO_TOKEN_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigurationError, match=r"MERCATO_TOKEN_SECRET_FILE: cannot read"):
        Settings()
    (tmp_path / "present").write_text(GOOD_SECRET)
    monkeypatch.setenv("MERCATO_TOKEN_SECRET_FILE", str(tmp_path / "present"))
    monkeypatch.setenv("MERCATO_TOKEN_SECRET", GOOD_SECRET)
    with pytest.raises(ConfigurationError, match="not both"):
        Settings()
    monkeypatch.delenv("MERCATO_TOKEN_SECRET_FILE")
    monkeypatch.delenv("MERCATO_TOKEN_SECRET")
    monkeypatch.setenv("MERCATO_SECRETS_DIR", str(tmp_path / "no-such-folder"))
    with pytest.raises(ConfigurationError, match="is not a folder"):
        Settings()


def test_production_lists_every_problem_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERCATO_ENV", "production")
    monkeypatch.setenv("MERCATO_DATABASE_URL", "sqlite:///./prod.db")
    monkeypatch.setenv("MERCATO_TOKEN_SECRET", DEFAULT_SECRET)
    monkeypatch.setenv("MERCATO_DEBUG", "1")
    monkeypatch.setenv("MERCATO_FAULT_INJECTION", "true")
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    assert refused.value.problems == [
        "MERCATO_DEBUG must be false",
        "MERCATO_DATABASE_URL must point at PostgreSQL, not SQLite",
        "MERCATO_TOKEN_SECRET must be a random value of 32+ characters, not the default",
        "MERCATO_FAULT_INJECTION must be off",
        SANDBOX_REFUSED,
    ]


@pytest.mark.parametrize("profile", ["staging", "production"])
def test_required_settings_must_be_given_not_defaulted(
    monkeypatch: pytest.MonkeyPatch, profile: str
) -> None:
    monkeypatch.setenv("MERCATO_ENV", profile)
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    assert [p.split(" is required")[0] for p in refused.value.problems] == [
        "MERCATO_DATABASE_URL",
        "MERCATO_TOKEN_SECRET",
        *([SANDBOX_REFUSED] if profile == "production" else []),
    ]
    monkeypatch.setenv("MERCATO_DATABASE_URL", PG)
    monkeypatch.setenv("MERCATO_TOKEN_SECRET", GOOD_SECRET)
    monkeypatch.setenv("MERCATO_PAYMENT_PROVIDER", "stripe")
    monkeypatch.setenv("MERCATO_STRIPE_SECRET_KEY", LIVE_KEY)
    assert Settings().env.value == profile


def test_staging_allows_what_production_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERCATO_ENV", "STAGING")  # case does not matter
    monkeypatch.setenv("MERCATO_DATABASE_URL", PG)
    monkeypatch.setenv("MERCATO_TOKEN_SECRET", GOOD_SECRET)
    monkeypatch.setenv("MERCATO_FAULT_INJECTION", "true")  # for the alert drill
    assert Settings().fault_injection


def test_invalid_values_are_explained_by_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERCATO_ENV", "qa")
    monkeypatch.setenv("MERCATO_LOG_LEVEL", "chatty")
    monkeypatch.setenv("MERCATO_WORKERS", "0")
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = explain(refused.value)
    assert "env (MERCATO_ENV): Input should be 'dev', 'test', 'staging' or 'production'" in message
    assert "log_level (MERCATO_LOG_LEVEL): must be one of DEBUG" in message
    assert "workers (MERCATO_WORKERS): Input should be greater than or equal to 1" in message


def test_feature_flags_have_profile_defaults_and_one_interface(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert set(Settings.model_fields) >= {f"feature_{feature.value}" for feature in Feature}
    for profile in PROFILES.values():
        assert {f"feature_{feature.value}" for feature in Feature} <= set(profile)
    assert Settings().enabled(Feature.API_DOCS)
    monkeypatch.setenv("MERCATO_FEATURE_API_DOCS", "false")
    assert not Settings().enabled(Feature.API_DOCS)
    monkeypatch.setenv("MERCATO_ENV", "production")
    monkeypatch.setenv("MERCATO_DATABASE_URL", PG)
    monkeypatch.setenv("MERCATO_TOKEN_SECRET", GOOD_SECRET)
    monkeypatch.setenv("MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION", "true")
    monkeypatch.delenv("MERCATO_FEATURE_API_DOCS")
    production = Settings()
    assert not production.enabled(Feature.API_DOCS)
    assert production.enabled(Feature.DISCOUNT_CODES)


def test_describe_masks_secrets_and_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERCATO_DATABASE_URL", "postgresql://app:pa55word@db:5432/shop")
    monkeypatch.setenv("MERCATO_TOKEN_SECRET", GOOD_SECRET)
    shown = {row.name: row for row in Settings().describe()}
    assert shown["token_secret"].value == "**********"
    assert shown["database_url"].value == "postgresql://app:**********@db:5432/shop"
    assert shown["database_url"].variable == "MERCATO_DATABASE_URL"
    assert shown["discount_codes"].value == '{"WELCOME10": 10}'
    assert all(
        GOOD_SECRET not in row.value and "pa55word" not in row.value for row in shown.values()
    )


def _production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERCATO_ENV", "production")
    monkeypatch.setenv("MERCATO_DATABASE_URL", PG)
    monkeypatch.setenv("MERCATO_TOKEN_SECRET", GOOD_SECRET)


def test_production_refuses_the_sandbox_payment_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    assert refused.value.problems == [SANDBOX_REFUSED]
    monkeypatch.setenv("MERCATO_PAYMENT_PROVIDER", "SANDBOX")  # named explicitly: still refused
    with pytest.raises(ConfigurationError, match="MERCATO_PAYMENT_PROVIDER must be stripe"):
        Settings()


@pytest.mark.parametrize("key", ["sk_test_" + "t" * 30, "rk_test_" + "t" * 30])
def test_production_refuses_stripe_test_keys(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("MERCATO_PAYMENT_PROVIDER", "stripe")
    monkeypatch.setenv("MERCATO_STRIPE_SECRET_KEY", key)
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    assert refused.value.problems == [SANDBOX_REFUSED]


def test_the_loudly_named_override_lets_production_run_the_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION", "true")
    settings = Settings()
    assert settings.payment_provider is PaymentProviderName.SANDBOX
    assert settings.sandbox_override_active
    monkeypatch.setenv("MERCATO_ENV", "staging")  # the override means nothing elsewhere
    assert not Settings().sandbox_override_active


def test_production_starts_with_stripe_and_a_live_key_from_a_mounted_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("MERCATO_PAYMENT_PROVIDER", "stripe")
    (tmp_path / "stripe_secret_key").write_text(LIVE_KEY + "\n")
    monkeypatch.setenv("MERCATO_SECRETS_DIR", str(tmp_path))
    settings = Settings()
    assert settings.stripe_secret_key.get_secret_value() == LIVE_KEY
    assert settings.source_of("stripe_secret_key") is Source.SECRETS_DIR
    assert not settings.sandbox_override_active
    shown = {row.name: row.value for row in settings.describe()}
    assert shown["stripe_secret_key"] == "**********"
    assert LIVE_KEY not in str(settings.redacted())


@pytest.mark.parametrize("profile", ["dev", "test", "staging", "production"])
def test_stripe_without_a_key_is_refused_in_every_profile(
    monkeypatch: pytest.MonkeyPatch, profile: str
) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("MERCATO_ENV", profile)
    monkeypatch.setenv("MERCATO_PAYMENT_PROVIDER", "stripe")
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    assert refused.value.problems[0].startswith(
        "MERCATO_STRIPE_SECRET_KEY is required with MERCATO_PAYMENT_PROVIDER=stripe"
    )


def test_stripe_in_production_needs_a_grace_longer_than_its_search_lag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("MERCATO_PAYMENT_PROVIDER", "stripe")
    monkeypatch.setenv("MERCATO_STRIPE_SECRET_KEY", LIVE_KEY)
    monkeypatch.setenv("MERCATO_CHECKOUT_GRACE_S", "30")
    with pytest.raises(ConfigurationError, match="MERCATO_CHECKOUT_GRACE_S must be at least 60"):
        Settings()


def test_an_unknown_provider_or_a_non_http_api_base_is_explained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MERCATO_PAYMENT_PROVIDER", "paypal")
    monkeypatch.setenv("MERCATO_STRIPE_API_BASE", "ftp://stripe.example")
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = explain(refused.value)
    assert "payment_provider (MERCATO_PAYMENT_PROVIDER): Input should be 'sandbox' or" in message
    assert "stripe_api_base (MERCATO_STRIPE_API_BASE): stripe_api_base must be" in message


@pytest.mark.parametrize("secret", [DEFAULT_SECRET, "short-but-not-default"])
def test_staging_refuses_the_built_in_and_short_token_secrets(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("MERCATO_ENV", "staging")
    monkeypatch.setenv("MERCATO_DATABASE_URL", PG)
    monkeypatch.setenv("MERCATO_TOKEN_SECRET", secret)
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    assert refused.value.problems == [
        "MERCATO_TOKEN_SECRET must be a random value of 32+ characters, not the default"
    ]


def test_staging_may_run_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERCATO_ENV", "staging")
    monkeypatch.setenv("MERCATO_DATABASE_URL", PG)
    monkeypatch.setenv("MERCATO_TOKEN_SECRET", GOOD_SECRET)
    settings = Settings()
    assert settings.payment_provider is PaymentProviderName.SANDBOX
    assert not settings.sandbox_override_active


def test_production_sends_the_stripe_key_over_https_only(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch)
    monkeypatch.setenv("MERCATO_PAYMENT_PROVIDER", "stripe")
    monkeypatch.setenv("MERCATO_STRIPE_SECRET_KEY", LIVE_KEY)
    monkeypatch.setenv("MERCATO_STRIPE_API_BASE", "http://stripe-proxy.internal:8080")
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    assert refused.value.problems == [
        "MERCATO_STRIPE_API_BASE must be an https:// URL: the secret key travels with every request"
    ]
    monkeypatch.setenv("MERCATO_STRIPE_API_BASE", "http://127.0.0.1:12111")  # this machine only
    assert Settings().stripe_api_base == "http://127.0.0.1:12111"


def test_the_trusted_proxies_reach_the_server_that_reads_forwarded_client_addresses() -> None:
    from mercato.web.serve import server_config

    settings = Settings(forwarded_allow_ips="10.0.0.0/8,192.168.1.10")

    config = server_config(settings, host="127.0.0.1", port=8000, workers=1)

    assert config.proxy_headers
    assert config.forwarded_allow_ips == "10.0.0.0/8,192.168.1.10"
    assert Settings().forwarded_allow_ips == "127.0.0.1,::1"


def test_private_webhook_addresses_are_allowed_in_dev_and_test_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for profile, allowed in (("dev", True), ("test", True)):
        monkeypatch.setenv("MERCATO_ENV", profile)
        assert Settings().webhook_private_addresses is allowed
    _production(monkeypatch)
    monkeypatch.setenv("MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION", "true")
    assert Settings().webhook_private_addresses is False
    monkeypatch.setenv("MERCATO_WEBHOOK_PRIVATE_ADDRESSES", "true")
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    assert refused.value.problems == [
        "MERCATO_WEBHOOK_PRIVATE_ADDRESSES must be off: webhooks would reach the shop's own network"
    ]
