"""Throttling across real server processes: two ``mercato serve`` processes on one database
share the count, and behind a trusted proxy each client is counted by its forwarded address."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import httpx

from tests.e2e.server import running_server

PASSWORD = "correct horse battery"
LIMITS = {
    "MERCATO_LOGIN_MAX_FAILURES": "3",
    "MERCATO_LOGIN_ADDRESS_MAX_FAILURES": "4",
    "MERCATO_LOGIN_WINDOW_S": "120",
}


def _address() -> str:
    """A client address no other test or run uses (IPv6 documentation range, its own /64)."""
    return f"2001:db8:{random.getrandbits(16):x}:{random.getrandbits(16):x}::7"


def _forwarded() -> dict[str, str]:
    """A client behind the trusted proxy (127.0.0.1, the default MERCATO_FORWARDED_ALLOW_IPS)."""
    return {"X-Forwarded-For": _address()}


def test_two_server_processes_share_the_count_and_forwarded_addresses_count_apart(
    database_url: str, tmp_path: Path
) -> None:
    email = f"proc-{uuid.uuid4().hex[:12]}@example.com"
    with (
        running_server(database_url, tmp_path, workers=1, **LIMITS) as one,
        running_server(database_url, tmp_path, workers=1, **LIMITS) as two,
        httpx.Client(timeout=10) as http,
    ):
        body = {"email": email, "password": PASSWORD, "name": "Two Processes"}
        assert http.post(f"{one.base_url}/v1/customers", json=body).status_code == 201
        wrong = {"email": email, "password": "wrong password"}
        for server in (one, two, one):
            answer = http.post(f"{server.base_url}/v1/auth/token", json=wrong, headers=_forwarded())
            assert answer.status_code == 401, answer.text
        right = {"email": email, "password": PASSWORD}
        for server in (one, two):
            answer = http.post(f"{server.base_url}/v1/auth/token", json=right, headers=_forwarded())
            assert answer.status_code == 429, answer.text
            assert int(answer.headers["retry-after"]) >= 1

        # one forwarded client spraying guesses at unknown accounts is stopped by its address
        sprayer = _forwarded()
        for _ in range(4):
            guess = {"email": f"{uuid.uuid4().hex[:12]}@example.com", "password": "Winter2026!"}
            answer = http.post(f"{two.base_url}/v1/auth/token", json=guess, headers=sprayer)
            assert answer.status_code == 401, answer.text
        guess = {"email": f"{uuid.uuid4().hex[:12]}@example.com", "password": "Winter2026!"}
        assert (
            http.post(f"{one.base_url}/v1/auth/token", json=guess, headers=sprayer).status_code
            == 429
        )
        # while a client at another address is judged as usual
        answer = http.post(f"{one.base_url}/v1/auth/token", json=guess, headers=_forwarded())
        assert answer.status_code == 401, answer.text
