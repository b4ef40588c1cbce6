"""The served API against its own OpenAPI document, fuzzed by schemathesis.

A real server (``mercato serve``) with the demo data, once per database kind, is fuzzed as an
anonymous client, the demo customer and the demo staff member with every conformance check
(status codes, content types, response schemas and headers, negative data rejected, positive
data accepted, missing required headers, undeclared methods) and the stateful phase, which
walks the document's links (create order -> place -> payments, register -> token). Any failure
fails the test with schemathesis' report. The few rules JSON Schema cannot state are listed,
with why, in tests/e2e/fuzz/schemathesis.toml.

The example counts keep each run within about a minute on a shared two-core machine.

The server gets a database of its own: fuzzing as staff registers webhook endpoints at the
document's example address, switches checkout off and deactivates accounts, and none of that
may reach another test's deliveries, checkouts or counts.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mercato.migrations import migrate
from tests.e2e.scratch import scratch_database
from tests.e2e.server import Server, running_server, server_env

FUZZ = Path(__file__).parent / "fuzz"
CUSTOMER = "customer@mercato.example"
ROLES = {
    "anonymous": None,
    "customer": (CUSTOMER, "customer-demo-password"),
    "staff": ("staff@mercato.example", "staff-demo-password"),
}
MAX_EXAMPLES = 4
SWITCHES = ("checkout", "discount_codes", "realtime")


@pytest.fixture(scope="module")
def shop(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("fuzz")
    backend = "sqlite" if database_url.startswith("sqlite") else "postgres"
    with scratch_database(backend, folder, "fuzz") as url:
        migrate.upgrade(url)
        loaded = subprocess.run(
            [sys.executable, "-m", "mercato", "demo-data"],
            env=server_env(url),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert loaded.returncode == 0, loaded.stderr
        # long polls are held for a second, not a minute: the fuzzer waits for every answer
        with running_server(url, folder, MERCATO_REALTIME_MAX_WAIT_S="1") as server:
            yield server


def token(shop: Server, role: str) -> str | None:
    credentials = ROLES[role]
    if credentials is None:
        return None
    email, password = credentials
    issued = httpx.post(
        f"{shop.base_url}/v1/auth/token", json={"email": email, "password": password}, timeout=10
    )
    assert issued.status_code == 200, issued.text
    return str(issued.json()["access_token"])


def restore_demo(shop: Server) -> None:
    """Undo what fuzzing as staff may have switched off or deactivated, for the next run."""
    staff = {"Authorization": f"Bearer {token(shop, 'staff')}"}
    with httpx.Client(base_url=shop.base_url, headers=staff, timeout=10) as http:
        for name in SWITCHES:
            body = {"enabled": True, "reason": "restored after fuzzing"}
            assert http.put(f"/v1/admin/switches/{name}", json=body).status_code == 200
        params: dict[str, str | int] = {"limit": 100}
        while True:  # every page
            page = http.get("/v1/customers", params=params).json()
            for account in page["items"]:
                if account["email"] == CUSTOMER and not account["active"]:
                    activated = http.post(f"/v1/customers/{account['id']}/activate")
                    assert activated.status_code == 200, activated.text
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]


def config_for(shop: Server, role: str, folder: Path) -> Path:
    """The shared settings plus this role's bearer token, as schemathesis' OpenAPI-aware auth."""
    text = (FUZZ / "schemathesis.toml").read_text()
    text = text.replace('hooks = "tests/e2e/fuzz/hooks.py"', f'hooks = "{FUZZ / "hooks.py"}"')
    bearer = token(shop, role)
    if bearer is not None:
        text += f'\n[auth.openapi.HTTPBearer]\nbearer = "{bearer}"\n'
    path = folder / f"schemathesis-{role}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("role", list(ROLES))
def test_the_api_answers_as_its_openapi_document_says(
    shop: Server, role: str, tmp_path: Path
) -> None:
    restore_demo(shop)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config_for(shop, role, tmp_path)),
        "run",
        f"{shop.base_url}/openapi.json",
        "--checks",
        "all",
        # these two compare roles with each other, which three separate runs cannot
        "--exclude-checks",
        "ignored_auth,object_level_authorization",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261205",
        "--workers",
        "1",
        "--no-shrink",
    ]
    if role != "anonymous":
        # an open event stream lasts until its order is final; test_realtime.py follows them
        command += ["--exclude-path-regex", "/events$"]
    ran = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=420, check=False
    )
    restore_demo(shop)
    report = ran.stdout[-20000:] + ran.stderr[-2000:]
    assert ran.returncode == 0, report
    # every generated case passed every check: "1234 generated, 1234 passed"
    assert re.search(r"\b(\d+) generated, \1 passed\b", ran.stdout), report
