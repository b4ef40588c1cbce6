"""MERCATO_METRICS_PORT: staging and production never put metrics on the API port."""

from __future__ import annotations

import os

import pytest

from mercato.config import ConfigurationError, Profile, Settings

PG = "postgresql://mercato@db.internal:5432/mercato"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("MERCATO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MERCATO_DATABASE_URL", PG)
    monkeypatch.setenv("MERCATO_TOKEN_SECRET", "k" * 40)
    monkeypatch.setenv("MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION", "true")


@pytest.mark.parametrize(
    ("profile", "port"),
    [(Profile.DEV, 0), (Profile.TEST, 0), (Profile.STAGING, 9100), (Profile.PRODUCTION, 9100)],
)
def test_staging_and_production_serve_metrics_on_port_9100_and_dev_on_the_api_port(
    monkeypatch: pytest.MonkeyPatch, profile: Profile, port: int
) -> None:
    monkeypatch.setenv("MERCATO_ENV", profile.value)
    assert Settings().metrics_port == port


@pytest.mark.parametrize("profile", ["staging", "production"])
def test_staging_and_production_refuse_metrics_on_the_api_port(
    monkeypatch: pytest.MonkeyPatch, profile: str
) -> None:
    monkeypatch.setenv("MERCATO_ENV", profile)
    monkeypatch.setenv("MERCATO_METRICS_PORT", "0")
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    assert [p.split(" ")[0] for p in refused.value.problems] == ["MERCATO_METRICS_PORT"]
    monkeypatch.setenv("MERCATO_METRICS_ENABLED", "false")  # nothing to serve, nothing exposed
    assert Settings().metrics_port == 0


@pytest.mark.parametrize("profile", ["dev", "staging", "production"])
def test_the_metrics_port_must_differ_from_the_api_port(
    monkeypatch: pytest.MonkeyPatch, profile: str
) -> None:
    monkeypatch.setenv("MERCATO_ENV", profile)
    monkeypatch.setenv("MERCATO_PORT", "9100")
    monkeypatch.setenv("MERCATO_METRICS_PORT", "9100")
    with pytest.raises(ConfigurationError) as refused:
        Settings()
    assert [p.split(" ")[0] for p in refused.value.problems] == ["MERCATO_METRICS_PORT"]


@pytest.mark.parametrize("text", ["-1", "65536", "http", "9100.5"])
def test_a_metrics_port_that_is_no_port_is_refused(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("MERCATO_METRICS_PORT", text)
    with pytest.raises(ValueError, match="metrics_port"):
        Settings()
