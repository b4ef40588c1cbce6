"""The OpenAPI document: what FastAPI derives from the routes, completed with what it cannot see.

FastAPI documents each route's parameters, body and success answer from the Pydantic models the
server validates with. What it cannot see is added here, in one pass over the finished document:

* every error is ``application/problem+json`` with the one shared :class:`Problem` schema, and
  each operation lists every status it can answer with the ``code`` values each can carry;
* answers that come from the platform rather than the route (401/403 from the authenticator,
  400/413/422 from reading the body, the idempotency middleware's 409/422, 503 while starting,
  draining or without a database) are added to every operation they apply to;
* 401 answers document ``WWW-Authenticate``;
* routes add their own error codes with :func:`problems` and their links with :func:`link`.

Nothing here changes how a request is served; it only describes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

PROBLEM_JSON = "application/problem+json"
PROBLEMS_KEY = "x-mercato-problems"

UNSAFE = frozenset({"post", "put", "patch", "delete"})


class FieldError(BaseModel):
    """One offending field of a request."""

    model_config = ConfigDict(populate_by_name=True)
    field: str = Field(description="The field, as a dotted path (`lines[0].quantity`)")
    in_: Literal["body", "query", "path", "header", "cookie"] = Field(alias="in")
    reason: str


class Problem(BaseModel):
    """An RFC 9457 problem: every error mercato answers has this shape."""

    model_config = ConfigDict(extra="allow", title="Problem")
    type: str = Field(examples=["https://mercato.dev/problems/out_of_stock"])
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    code: str = Field(description="A stable, machine-readable error code")
    instance: str | None = Field(default=None, description="The request's path")
    request_id: str | None = None
    field: str | None = Field(default=None, description="The offending field, where there is one")
    errors: list[FieldError] | None = Field(
        default=None, description="Every offending field of the request (validation errors)"
    )


AUTH_401 = ("unauthenticated", "invalid_token", "token_expired", "unknown_account")
AUTH_403 = ("account_inactive", "role_changed")
STAFF_403 = ("staff_only",)
BODY_400 = ("malformed_json",)
BODY_413 = ("body_too_large",)
INPUT_422 = ("validation_failed", "invalid_text", "value_out_of_range")
IDEMPOTENCY_409 = ("idempotency_in_progress",)
IDEMPOTENCY_422 = ("invalid_idempotency_key", "idempotency_key_reused")
ALWAYS_503 = ("starting", "shutting_down", "database_unavailable", "retry_later")

_PARAMETER_CODES = {
    "cursor": "invalid_cursor",
    "If-Match": "invalid_if_match",
    "If-None-Match": "invalid_if_none_match",
}

_DESCRIPTIONS = {
    400: "The request body is not valid JSON",
    401: "No bearer token, or one that is forged, expired or names no account",
    402: "The payment was declined",
    403: "Authenticated, but not allowed to do this",
    404: "No such resource, or not yours",
    409: "Conflicts with the current state",
    413: "The request body is too large",
    422: "A field is invalid (the `errors` name every one)",
    429: "Too many failed attempts; retry after `Retry-After` seconds",
    503: "Not now: retry after `Retry-After` seconds",
}

_RETRY_AFTER = {
    "description": "Seconds to wait before retrying",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
_WWW_AUTHENTICATE = {
    "description": 'The Bearer challenge (RFC 6750); `error="invalid_token"` for a token that is '
    "forged, expired or names no account",
    "required": True,
    "schema": {"type": "string", "pattern": "^Bearer( |$)"},
}


def operation_id(route: APIRoute) -> str:
    """An operation's id: its route function's name (unique across mercato's routes)."""
    return route.name


def link(operation: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to ``operation``, its parameters taken from this answer or request
    (runtime expressions such as ``$response.body#/id``)."""
    return {"operationId": operation, "description": description, "parameters": parameters}


def problems(codes: Mapping[int, Iterable[str]]) -> dict[str, Any]:
    """``openapi_extra`` for a route: the error codes it answers, by status, beyond the
    platform's own (authentication, validation, idempotency, availability)."""
    return {PROBLEMS_KEY: {str(status): list(found) for status, found in codes.items()}}


def install(app: FastAPI, *, extend: Iterable[Callable[[dict[str, Any]], None]] = ()) -> None:
    """Complete the application's OpenAPI document as the module docstring says; ``extend``
    adds paths FastAPI does not see (plain ASGI routes) before the errors are completed."""
    build = app.openapi
    extensions = list(extend)
    completed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        document = build()  # FastAPI builds it again when routes were added since
        if not completed or completed[0] is not document:
            for extension in extensions:
                extension(document)
            complete(document, _route_facts(app))
            completed[:] = [document]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


RouteFacts = dict[tuple[str, str], set[str]]


def _route_facts(app: FastAPI) -> RouteFacts:
    """The names of each operation's dependencies (``_staff`` when it needs staff)."""
    facts: RouteFacts = {}
    for route in iter_route_contexts(app.routes):  # what FastAPI documents, routers included
        if not isinstance(route.original_route, APIRoute):
            continue
        names = {getattr(d.call, "__name__", "") for d in _all_dependencies(route.dependant)}
        for method in route.methods or ():
            facts[(str(route.path_format), method.lower())] = names
    return facts


def _all_dependencies(dependant: Any) -> Iterable[Any]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _all_dependencies(dependency)


def complete(document: dict[str, Any], facts: RouteFacts) -> None:
    """Add the Problem schema and every operation's error answers to ``document``."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(_problem_schemas())
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method in UNSAFE | {"get"} and isinstance(operation, dict):
                names = facts.get((path, method), set())
                _complete_operation(path, method, operation, names)


def _problem_schemas() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
    definitions = schema.pop("$defs", {})
    return {"Problem": schema, **definitions}


def _complete_operation(path: str, method: str, operation: dict[str, Any], deps: set[str]) -> None:
    for parameter in operation.get("parameters", []):
        parameter["schema"] = _not_null(parameter.get("schema", {}))
    codes: dict[int, list[str]] = {}
    declared = operation.pop(PROBLEMS_KEY, {})
    for status, found in declared.items():
        _add(codes, int(status), found)
    for status, found in _platform_codes(path, method, operation, deps).items():
        _add(codes, status, found)
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    for status in sorted(status for status, found in codes.items() if found):
        responses[str(status)] = _problem_response(status, codes[status])


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter is absent or a value, never null: ``anyOf [X, null]`` becomes ``X``."""
    variants = [v for v in schema.get("anyOf", []) if v != {"type": "null"}]
    if len(variants) != 1 or len(schema["anyOf"]) != 2:
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**variants[0], **rest}


def _platform_codes(
    path: str, method: str, operation: dict[str, Any], deps: set[str]
) -> dict[int, tuple[str, ...]]:
    codes: dict[int, tuple[str, ...]] = {}
    if any("HTTPBearer" in requirement for requirement in operation.get("security", [])):
        codes[401] = AUTH_401
        codes[403] = AUTH_403 + (STAFF_403 if "_staff" in deps else ())
    parameters = {p["name"] for p in operation.get("parameters", [])}
    if parameters or "requestBody" in operation:
        codes[422] = INPUT_422
    codes[422] = codes.get(422, ()) + tuple(
        code for name, code in _PARAMETER_CODES.items() if name in parameters
    )
    if "requestBody" in operation:
        codes[400] = BODY_400
        codes[413] = BODY_413
    if method in UNSAFE:
        codes[409] = IDEMPOTENCY_409
        codes[422] = codes.get(422, ()) + IDEMPOTENCY_422
        _document_idempotency_key(operation)
    if path.startswith("/v1/"):
        codes[503] = ALWAYS_503
    return codes


def _document_idempotency_key(operation: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    if any(p.get("name") == "Idempotency-Key" for p in parameters):
        return
    parameters.append(
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "Makes a retry safe: the same key and request replay the first "
            "answer (`Idempotent-Replayed: true`); 1-255 printable characters",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
        }
    )


def _add(codes: dict[int, list[str]], status: int, found: Iterable[str]) -> None:
    known = codes.setdefault(status, [])
    known.extend(code for code in found if code not in known)


def _problem_response(status: int, codes: list[str]) -> dict[str, Any]:
    listed = ", ".join(f"`{code}`" for code in codes)
    # OpenAPI 3.1 schemas are JSON Schema 2020-12: keywords beside a $ref apply too, so the
    # one Problem schema is narrowed to this answer's codes (clients see one Problem type)
    schema = {
        "$ref": "#/components/schemas/Problem",
        "properties": {"code": {"type": "string", "enum": codes}},
    }
    example = {
        "type": f"https://mercato.dev/problems/{codes[0]}",
        "title": _DESCRIPTIONS.get(status, "Error"),
        "status": status,
        "detail": _DESCRIPTIONS.get(status, "Error"),
        "code": codes[0],
    }
    answer: dict[str, Any] = {
        "description": f"{_DESCRIPTIONS.get(status, 'Error')}: {listed}",
        "content": {PROBLEM_JSON: {"schema": schema, "example": example}},
    }
    headers: dict[str, Any] = {}
    if status == 401:
        headers["WWW-Authenticate"] = _WWW_AUTHENTICATE
    if status in (429, 503):
        headers["Retry-After"] = _RETRY_AFTER
    if headers:
        answer["headers"] = headers
    return answer
