"""``mercato smoke`` and ``mercato loadcheck`` against a real local server, as CI runs them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mercato.migrations import migrate
from tests.e2e.server import Server, free_port, running_server, server_env

DEMO_STAFF = ("staff@mercato.example", "staff-demo-password")


def mercato(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mercato", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the demo catalog and staff account."""
    folder = tmp_path_factory.mktemp("smoke")
    url = f"sqlite:///{folder / 'shop.db'}"
    migrate.upgrade(url)
    loaded = mercato("demo-data", env=server_env(url))
    assert loaded.returncode == 0, loaded.stderr
    with running_server(url, folder) as server:
        yield server


def _stock(server: Server) -> dict[str, int]:
    page = httpx.get(f"{server.base_url}/v1/products", params={"limit": 100}, timeout=10).json()
    return {p["id"]: p["available"] for p in page["items"]}


def _report(stdout: str) -> dict[str, str]:
    lines = [line.strip() for line in stdout.splitlines() if line.startswith("  ")]
    return {" ".join(line.split()[1:4]): line.split()[0] for line in lines}


def test_smoke_passes_against_a_healthy_instance_and_cleans_up(shop: Server) -> None:
    before = _stock(shop)
    env = server_env("sqlite:///unused.db")
    env["MERCATO_SMOKE_STAFF_EMAIL"], env["MERCATO_SMOKE_STAFF_PASSWORD"] = DEMO_STAFF
    ran = mercato("smoke", "--base-url", shop.base_url, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    steps = [line.split()[:2] for line in ran.stdout.splitlines() if line.startswith("  ")]
    assert [status for status, _ in steps] == ["ok"] * 6, ran.stdout
    assert [name for _, name in steps] == [
        "probes",
        "catalog",
        "customer",
        "order",
        "cleanup:",
        "cleanup:",
    ]
    assert "captured" in ran.stdout
    assert ran.stdout.rstrip().endswith("passed")
    assert _stock(shop) == before  # the cancelled order gave its unit back

    email = next(line.split()[-1] for line in ran.stdout.splitlines() if "customer  " in line)
    login = httpx.post(
        f"{shop.base_url}/v1/auth/token",
        json={"email": email, "password": "smoke-test-password-0123"},
        timeout=10,
    )
    assert login.status_code == 403, "the smoke customer should be deactivated"
    assert login.json()["code"] == "account_inactive"


def test_smoke_fails_with_a_readable_report_when_nothing_is_in_stock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate.upgrade(url)
    with running_server(url, tmp_path) as empty:
        ran = mercato("smoke", "--base-url", empty.base_url, env=server_env(url))
    assert ran.returncode == 1
    assert "ok   probes" in ran.stdout
    assert "FAIL catalog" in ran.stdout
    assert "no product in stock" in ran.stdout
    assert "customer" not in ran.stdout  # later steps do not run after a failure
    assert ran.stdout.rstrip().endswith("FAILED")


def test_smoke_reports_an_unreachable_instance(tmp_path: Path) -> None:
    ran = mercato(
        "smoke",
        "--base-url",
        f"http://127.0.0.1:{free_port()}",
        "--timeout",
        "2",
        env=server_env(f"sqlite:///{tmp_path / 'x.db'}"),
    )
    assert ran.returncode == 1
    assert "FAIL probes" in ran.stdout
    assert "ConnectError" in ran.stdout


def test_smoke_and_loadcheck_refuse_bad_arguments(tmp_path: Path) -> None:
    env = server_env(f"sqlite:///{tmp_path / 'x.db'}")
    for args in (
        ("smoke", "--base-url", "not-a-url"),
        ("smoke",),
        ("loadcheck", "--base-url", "http://127.0.0.1:1", "--duration", "-3"),
        ("loadcheck", "--base-url", "http://127.0.0.1:1", "--concurrency", "0"),
    ):
        refused = mercato(*args, env=env)
        assert refused.returncode == 2, args
        assert "usage: mercato" in refused.stderr


def test_loadcheck_passes_within_thresholds_and_fails_beyond_them(shop: Server) -> None:
    env = server_env("sqlite:///unused.db")
    common = ("loadcheck", "--base-url", shop.base_url, "--duration", "2", "--concurrency", "4")
    passed = mercato(*common, "--max-p95-ms", "2000", env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "errors 0.00%" in passed.stdout
    assert passed.stdout.rstrip().endswith("passed")
    failed = mercato(*common, "--max-p95-ms", "0.001", env=env)
    assert failed.returncode == 1
    assert "FAILED: p95" in failed.stdout
