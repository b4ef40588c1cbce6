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
    Profile,
    Settings,
    Source,
    explain,
)

GOOD_SECRET = "k" * 40
PG = "postgresql://mercato@db.internal:5432/mercato"


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
        settings = Settings()
        for name, value in PROFILES[profile].items():
            assert getattr(settings, name) == value, (profile, name)
            assert settings.source_of(name) is Source.PROFILE
        assert settings.source_of("tax_rate_bp") is Source.DEFAULT
    dev, production = PROFILES[Profile.DEV], PROFILES[Profile.PRODUCTION]
    assert (dev["debug"], dev["log_level"]) == (True, "DEBUG")
    assert (production["debug"], production["log_level"]) == (False, "WARNING")
    assert [PROFILES[p]["replicas_hint"] for p in Profile if p is not Profile.TEST] == [1, 3, 10]


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
    ]
    monkeypatch.setenv("MERCATO_DATABASE_URL", PG)
    monkeypatch.setenv("MERCATO_TOKEN_SECRET", GOOD_SECRET)
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
