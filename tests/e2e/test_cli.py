"""The mercato command line, run as a user would run it (a real process, a real server)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mercato.migrations import migrate
from tests.conftest import TEST_SECRET


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MERCATO_")}
    env.update(
        {
            "MERCATO_DATABASE_URL": database_url,
            "MERCATO_TOKEN_SECRET": TEST_SECRET,
            "MERCATO_ARGON2_TIME_COST": "1",
            "MERCATO_ARGON2_MEMORY_KIB": "8",
            **extra,
        }
    )
    return env


def mercato(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mercato", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_every_command_explains_itself(sqlite_url: str) -> None:
    env = _env(sqlite_url)
    top = mercato("--help", env=env)
    assert top.returncode == 0
    for command in ("serve", "db", "demo-data", "users", "worker", "config", "smoke", "loadcheck"):
        assert command in top.stdout
    for args in (
        ("serve",),
        ("db",),
        ("db", "upgrade"),
        ("db", "downgrade"),
        ("demo-data",),
        ("users", "create-staff"),
        ("worker",),
        ("config", "show"),
        ("smoke",),
        ("loadcheck",),
    ):
        shown = mercato(*args, "--help", env=env)
        assert shown.returncode == 0, (args, shown.stderr)
        assert "usage: mercato" in shown.stdout


def test_migrations_demo_data_and_staff_accounts_from_the_command_line(sqlite_url: str) -> None:
    env = _env(sqlite_url)
    assert mercato("db", "current", env=env).stdout.strip() == "(empty database)"
    assert mercato("db", "upgrade", env=env).returncode == 0
    assert mercato("db", "current", env=env).stdout.strip() == migrate.head()
    first = mercato("demo-data", env=env)
    assert "2 accounts and 50 products created" in first.stdout, first.stderr
    again = mercato("demo-data", env=env)
    assert "0 accounts and 0 products created" in again.stdout
    catalog = mercato("demo-data", "--catalog", "120", "--seed", "7", env=env)
    assert "0 accounts and 120 products created" in catalog.stdout, catalog.stderr
    more = mercato("demo-data", "--catalog", "150", "--seed", "7", env=env)
    assert "0 accounts and 30 products created" in more.stdout, more.stderr  # the first 120 kept

    made = mercato(
        "users",
        "create-staff",
        "--email",
        "boss@example.com",
        env=env,
        stdin="a long staff password\n",
    )
    assert made.returncode == 0, made.stderr
    assert "created staff account boss@example.com" in made.stdout
    taken = mercato(
        "users",
        "create-staff",
        "--email",
        "BOSS@example.com",
        env=env,
        stdin="a long staff password\n",
    )
    assert taken.returncode != 0
    assert "already exists" in taken.stderr

    assert mercato("db", "downgrade", "base", env=env).returncode == 0
    assert mercato("db", "current", env=env).stdout.strip() == "(empty database)"


def _shown(stdout: str) -> dict[str, tuple[str, str]]:
    rows = [line.split(None, 2) for line in stdout.splitlines()[1:]]
    return {row[0]: (row[1], row[2] if len(row) > 2 else "") for row in rows}


def test_config_show_redacts_secrets_and_names_each_source(sqlite_url: str, tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("a-file-secret-that-is-long-enough-0123456789\n")
    env = _env(sqlite_url, MERCATO_ENV="staging", MERCATO_PORT="9000")
    del env["MERCATO_TOKEN_SECRET"]
    env["MERCATO_TOKEN_SECRET_FILE"] = str(secret_file)
    shown = mercato("config", "show", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "profile: staging"
    assert "a-file-secret" not in shown.stdout
    rows = _shown(shown.stdout)
    assert rows["MERCATO_TOKEN_SECRET"] == ("file", "**********")
    assert rows["MERCATO_PORT"] == ("env", "9000")
    assert rows["MERCATO_LOG_FORMAT"] == ("profile", "json")
    assert rows["MERCATO_MAX_BODY_BYTES"] == ("default", "262144")
    assert rows["MERCATO_DATABASE_URL"] == ("env", sqlite_url)


def test_config_show_masks_the_database_password(sqlite_url: str) -> None:
    url = "postgresql://mercato:hunter2-secret@db.internal:5432/mercato"
    shown = mercato("config", "show", "--json", env=_env(url))
    assert shown.returncode == 0, shown.stderr
    assert "hunter2-secret" not in shown.stdout
    assert TEST_SECRET not in shown.stdout
    settings = json.loads(shown.stdout)["settings"]
    assert settings["database_url"] == {
        "value": "postgresql://mercato:**********@db.internal:5432/mercato",
        "source": "env",
    }


def test_production_refuses_to_start_listing_every_problem(sqlite_url: str) -> None:
    env = _env(
        sqlite_url,
        MERCATO_ENV="production",
        MERCATO_DEBUG="true",
        MERCATO_TOKEN_SECRET="too-short",
        MERCATO_FAULT_INJECTION="true",
        MERCATO_ALLOW_SANDBOX_PAYMENTS_IN_PRODUCTION="true",
    )
    for command in (("serve",), ("config", "show"), ("worker",)):
        refused = mercato(*command, env=env)
        assert refused.returncode == 2, (command, refused.stderr)
        problems = [line for line in refused.stderr.splitlines() if line.startswith("  - ")]
        assert problems == [
            "  - MERCATO_DEBUG must be false",
            "  - MERCATO_DATABASE_URL must point at PostgreSQL, not SQLite",
            "  - MERCATO_TOKEN_SECRET must be a random value of 32+ characters, not the default",
            "  - MERCATO_FAULT_INJECTION must be off",
        ], refused.stderr
        assert "profile 'production'" in refused.stderr


def test_production_names_missing_required_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MERCATO_")}
    env["MERCATO_ENV"] = "production"
    refused = mercato("serve", env=env)
    assert refused.returncode == 2
    assert "MERCATO_DATABASE_URL is required in the production profile" in refused.stderr
    assert "MERCATO_TOKEN_SECRET is required in the production profile" in refused.stderr
    assert "SQLite" not in refused.stderr  # the missing setting is the one problem named


def test_an_invalid_setting_is_refused_with_a_clear_message(sqlite_url: str) -> None:
    refused = mercato("config", "show", env=_env(sqlite_url, MERCATO_TAX_RATE_BP="-5"))
    assert refused.returncode != 0
    assert "tax_rate_bp" in refused.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_http_and_stops_cleanly_on_sigterm(sqlite_url: str) -> None:
    env = _env(sqlite_url)
    assert mercato("db", "upgrade", env=env).returncode == 0
    assert mercato("demo-data", env=env).returncode == 0
    port = _free_port()
    log = Path(sqlite_url.removeprefix("sqlite:///")).with_suffix(".log")
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "mercato", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        products = httpx.get(f"{base}/v1/products", params={"limit": 5}, timeout=5)
        assert products.status_code == 200
        assert len(products.json()["items"]) == 5
        assert httpx.get(f"{base}/openapi.json", timeout=5).json()["openapi"].startswith("3.1")
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
    assert code == 0, log.read_text()
