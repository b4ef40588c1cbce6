"""The OpenAPI document says what the server answers: every error a problem+json of one schema.

The fuzzing in test_openapi_fuzz.py checks the server against the document; these tests check
the document's own promises that fuzzing cannot see (what an answer *may* carry).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mercato.kernel.errors import InvalidValue
from mercato.platform.deps import parse_if_match
from mercato.platform.openapi import Problem
from tests.e2e.helpers import running_app

pytestmark = pytest.mark.anyio

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(database_url) as application:
        yield application


@pytest.fixture(scope="module")
async def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def error_codes(operation: dict[str, Any], status: int) -> list[str]:
    content = operation["responses"][str(status)]["content"]["application/problem+json"]
    code: list[str] = content["schema"]["properties"]["code"]["enum"]
    return code


async def test_every_error_answer_is_a_problem_of_the_one_shared_schema(
    document: dict[str, Any],
) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert {"type", "title", "status", "detail", "code"} <= set(
        document["components"]["schemas"]["Problem"]["required"]
    )
    for method, path, operation in operations(document):
        for status, answer in operation["responses"].items():
            if int(status) < 400 or path in ("/livez", "/readyz", "/startupz"):
                continue
            assert list(answer["content"]) == ["application/problem+json"], (method, path, status)
            schema = answer["content"]["application/problem+json"]["schema"]
            assert schema["$ref"] == "#/components/schemas/Problem"
            assert error_codes(operation, int(status)), (method, path, status)
            assert "example" in answer["content"]["application/problem+json"]


async def test_operations_with_a_token_document_401_with_its_challenge_and_403(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        if not any("HTTPBearer" in s for s in operation.get("security", [])):
            continue
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], (method, path)
        assert "invalid_token" in error_codes(operation, 401)
        assert "account_inactive" in error_codes(operation, 403)


async def test_staff_routes_document_staff_only_and_deactivation_its_own_conflicts(
    document: dict[str, Any],
) -> None:
    deactivate = document["paths"]["/v1/customers/{customer_id}/deactivate"]["post"]
    assert "staff_only" in error_codes(deactivate, 403)
    assert {"cannot_deactivate_self", "last_active_staff"} <= set(error_codes(deactivate, 409))
    login = document["paths"]["/v1/auth/token"]["post"]
    assert "account_inactive" in error_codes(login, 403)


async def test_every_unsafe_operation_documents_the_idempotency_key(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        if method == "get":
            continue
        names = [p["name"] for p in operation["parameters"]]
        assert "Idempotency-Key" in names, (method, path)
        assert "idempotency_key_reused" in error_codes(operation, 422)


async def test_problems_the_server_sends_match_the_problem_schema(
    client: httpx.AsyncClient,
) -> None:
    answers = [
        await client.get("/v1/products", params={"limit": 0}),
        await client.post(
            "/v1/customers", content=b"{", headers={"content-type": "application/json"}
        ),
        await client.get("/v1/customers/me"),
        await client.post("/v1/orders/nothing/place", json={"card_number": "1"}),
    ]
    for answer in answers:
        assert answer.headers["content-type"] == "application/problem+json", answer.text
        problem = Problem.model_validate(answer.json())
        assert problem.status == answer.status_code
    validation = Problem.model_validate(answers[0].json())
    assert validation.errors is not None
    assert [(e.field, e.in_) for e in validation.errors] == [("limit", "query")]


GOOD = {"email": "ada@example.com", "password": "a-long-enough-passphrase", "name": "Ada"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", ""),
        ("email", "not-an-address"),
        ("password", "short"),
        ("password", "x" * 129),
        ("name", "   "),
    ],
)
async def test_what_the_document_refuses_at_registration_the_server_refuses_naming_the_field(
    client: httpx.AsyncClient, document: dict[str, Any], field: str, value: str
) -> None:
    schema = document["components"]["schemas"]["CustomerCreate"]["properties"][field]
    allowed = len(value) >= schema.get("minLength", 0) and len(value) <= schema["maxLength"]
    assert not (allowed and re.search(schema.get("pattern", ""), value)), "the schema refuses it"
    answer = await client.post("/v1/customers", json={**GOOD, field: value})
    problem = Problem.model_validate(answer.json())
    assert (answer.status_code, problem.field) == (422, field), answer.text
    operation = document["paths"]["/v1/customers"]["post"]
    assert problem.code in error_codes(operation, 422)


async def test_a_405_names_every_method_the_path_supports(client: httpx.AsyncClient) -> None:
    # GET and POST /v1/orders are two routes; Starlette named only the first one's method
    for path, methods in (("/v1/orders", {"GET", "POST"}), ("/v1/products", {"GET", "POST"})):
        answer = await client.request("PUT", path)
        assert answer.status_code == 405, answer.text
        assert set(answer.headers["allow"].split(", ")) == methods
        Problem.model_validate(answer.json())


async def test_the_documented_if_match_pattern_is_the_grammar_the_server_reads(
    document: dict[str, Any],
) -> None:
    operation = document["paths"]["/v1/orders/{order_id}/place"]["post"]
    header = next(p for p in operation["parameters"] if p["name"] == "If-Match")
    pattern = header["schema"]["pattern"]
    for value in ('"3"', 'W/"3"', "3", "*", '""3""', "W/ 3", "x", "", '"1234567890123"'):
        try:
            parse_if_match(value)
            accepted = True
        except InvalidValue:
            accepted = False
        assert accepted is bool(re.fullmatch(pattern, value)), value
