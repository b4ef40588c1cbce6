"""Plain ASGI requests and middleware (no BaseHTTPMiddleware): reading headers and the query,
request ids, headers every response carries, and a request body size cap."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mercato.platform.error_codes import ErrorCode

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

RESPONSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    # Browsers must take a response as the type it says it is: a problem+json or a JSON body
    # holding client text is never sniffed into HTML or script.
    (b"x-content-type-options", b"nosniff"),
)
"""Headers added to every response (errors, probes, /metrics and streams included) by the
outermost middleware, :class:`mercato.platform.instrumentation.InstrumentationMiddleware`."""


def header(scope: Scope, name: bytes) -> str | None:
    """A request header (lower-case name), decoded; None when absent."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def query(scope: Scope) -> dict[str, list[str]]:
    """The query string's parameters."""
    raw: bytes = scope.get("query_string", b"")
    return parse_qs(raw.decode("latin-1"), keep_blank_values=True) if raw else {}


def last_query_value(scope: Scope, name: str) -> str | None:
    """A query parameter's last value (as FastAPI reads a single parameter); None if absent."""
    values = query(scope).get(name)
    return values[-1] if values else None


def assign_request_id(scope: Scope) -> str:
    """The request's id: its ``X-Request-ID`` when that is sane, else a new one.

    Kept in ``scope["state"]["request_id"]`` for problem bodies and logs. The outermost
    middleware (:class:`mercato.platform.instrumentation.InstrumentationMiddleware`) calls it
    and echoes the id in the response's ``X-Request-ID``.
    """
    incoming = header(scope, b"x-request-id") or ""
    request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413 before the app parses them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = header(scope, b"content-length")
        if (
            length is not None
            and length.isascii()
            and length.isdigit()
            and int(length) > self.max_bytes
        ):
            await self._refuse(scope, send)
            return
        received = 0
        too_large = False

        async def limited() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = orjson.dumps(
            {
                "type": "https://mercato.dev/problems/body_too_large",
                "title": "Request body too large",
                "status": 413,
                "detail": f"The request body exceeds {self.max_bytes} bytes.",
                "code": ErrorCode.BODY_TOO_LARGE,
                "instance": scope.get("path", ""),
                "request_id": scope.get("state", {}).get("request_id"),
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(HTTPException):
    # An HTTPException, because FastAPI turns any other error raised while it reads the body
    # into a 400; this way a streamed body over the limit is a 413 like a declared one.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body exceeds {max_bytes} bytes.")
