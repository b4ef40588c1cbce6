"""A real server's logs: JSON lines with request ids and timings, and never a secret in them."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import httpx

from mercato.platform.security import Principal, Role, TokenService
from tests.conftest import TEST_SECRET
from tests.e2e.helpers import ADDRESS, SUCCESS_CARD
from tests.e2e.server import running_server


def test_logs_are_json_with_request_ids_and_never_contain_secrets(
    database_url: str, tmp_path: Path
) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    wrong = f"wrong-{uuid.uuid4().hex}"
    query_secret = f"qs-{uuid.uuid4().hex}"
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    forged = TokenService("another-secret-that-is-long-enough-000", ttl_s=60).issue(
        Principal(str(uuid.uuid4()), Role.CUSTOMER)
    )[0]
    with (
        running_server(
            database_url, tmp_path, MERCATO_LOG_FORMAT="json", MERCATO_LOG_LEVEL="DEBUG"
        ) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        assert (
            http.post(
                "/v1/customers", json={"email": email, "password": password, "name": "Log"}
            ).status_code
            == 201
        )
        assert (
            http.post("/v1/auth/token", json={"email": email, "password": wrong}).status_code == 401
        )
        login = http.post("/v1/auth/token", json={"email": email, "password": password})
        token = login.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        me = http.get("/v1/customers/me", headers={**auth, "X-Request-ID": "drill-req-42"})
        assert me.status_code == 200
        assert me.headers["x-request-id"] == "drill-req-42"
        generated = http.get("/v1/products", params={"token": query_secret})
        assert len(generated.headers["x-request-id"]) == 32
        assert (
            http.get("/v1/customers/me", headers={"Authorization": f"Bearer {forged}"}).status_code
            == 401
        )
        broken = http.post(
            "/v1/auth/token",
            content=f'{{"password": "{password}"',
            headers={"content-type": "application/json"},
        )
        assert broken.status_code == 400
        order = http.post("/v1/orders", json={"shipping_address": ADDRESS}, headers=auth)
        placed = http.post(
            f"/v1/orders/{order.json()['id']}/place",
            json={"card_number": SUCCESS_CARD},
            headers=auth,
        )
        assert placed.status_code in (409, 422)  # no lines: refused, but the card was sent
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
    text = server.log.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert records, text[-2000:]
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= set(record), record
    access = [r for r in records if r["logger"] == "mercato.access"]
    me_line = next(r for r in access if r.get("request_id") == "drill-req-42")
    assert me_line["route"] == "/v1/customers/me"
    assert me_line["status"] == 200
    assert me_line["method"] == "GET"
    assert isinstance(me_line["duration_ms"], float)
    listed = next(r for r in access if r["route"] == "/v1/products")
    assert listed["request_id"] == generated.headers["x-request-id"]
    assert "?" not in listed["path"]  # query strings are never logged
    for secret in (password, wrong, token, forged, query_secret, TEST_SECRET, SUCCESS_CARD):
        assert secret not in text, f"a secret reached the log: {secret[:8]}..."
