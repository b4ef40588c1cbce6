"""Idempotency keys with Stripe's semantics, for every unsafe endpoint.

A client sends ``Idempotency-Key: <1-255 printable characters>`` with a POST, PUT, PATCH or
DELETE. Keys are scoped to the caller (the token's subject; ``anonymous`` without a token).

* The first request with a key claims it (a ``running`` row with a lease) and runs exactly as
  it would without the key: its units of work commit on their own, so a checkout's pending
  payment is committed before the card provider is called and no lock outlives its phase.
* Its response (status, body and the headers a client needs) is stored right after the
  request's last transaction. A crash in between leaves the key claimed until the lease runs
  out; a retry then runs the request again against the state it left (an order that was
  placed answers that it is no longer a draft).
* Only final answers are stored. An answer that means "not yet, retry" — any 5xx, 408, 425,
  429, or one carrying ``Retry-After`` (such as 409 ``checkout_in_progress``) — releases the key
  instead, so a retry with the same key runs again. So does an answer marked
  ``Cache-Control: no-store`` (an access token): what must not be cached is not kept here.
* A repeat with the same key and the same request (method, path, query, body) gets the stored
  response replayed, marked ``Idempotent-Replayed: true``.
* A repeat while the first is still running waits up to ``wait_s`` for it to finish and then
  replays it; if it is still running after that, it gets 409 ``idempotency_in_progress``.
* The same key with a different request gets 422 ``idempotency_key_reused``.

The request fingerprint is an HMAC-SHA256 keyed with a server secret: a request carries a card
number, and an unkeyed hash of it could be inverted by trying every card number. Rows are kept
for ``retention`` (24 h by default) and then purged by a worker.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mercato.kernel.errors import AuthenticationFailed
from mercato.platform.error_codes import ErrorCode
from mercato.platform.http import header
from mercato.platform.idempotency_store import Claim, IdempotencyError, IdempotencyStore, Stored
from mercato.platform.security import TokenService, bearer_token

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REPLAYED_HEADER = b"idempotent-replayed"
_KEPT_HEADERS = frozenset({b"content-type", b"location", b"etag"})
# Answers that tell the client to come back later rather than what became of its request.
_NOT_YET = frozenset({408, 425, 429})


def _problem(scope: Scope, status: int, code: str, detail: str, headers: dict[str, str]) -> Stored:
    body = orjson.dumps(
        {
            "type": f"https://mercato.dev/problems/{code}",
            "title": "Idempotency-Key problem",
            "status": status,
            "detail": detail,
            "code": code,
            "field": "Idempotency-Key",
            "instance": scope.get("path", ""),
            "request_id": scope.get("state", {}).get("request_id"),
        }
    )
    extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Stored(status, [(b"content-type", b"application/problem+json"), *extra], body)


class IdempotencyMiddleware:
    """Applies the rules in the module docstring to requests carrying ``Idempotency-Key``."""

    def __init__(
        self, app: ASGIApp, *, store: IdempotencyStore, tokens: TokenService, secret: str
    ) -> None:
        self.app = app
        self.store = store
        self.tokens = tokens
        # a key of its own, derived from the server secret, for fingerprints only
        self._fingerprint_key = hmac.digest(secret.encode(), b"mercato idempotency", "sha256")

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] not in UNSAFE:
            # handed on, not awaited here: no frame of this layer stays alive while the
            # request runs (a held long poll or stream keeps every frame it passes)
            return self.app(scope, receive, send)
        return self._keyed(scope, receive, send, key)

    async def _keyed(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        if not 1 <= len(key) <= 255 or not key.isprintable():
            await _send(
                send,
                _problem(
                    scope,
                    422,
                    ErrorCode.INVALID_IDEMPOTENCY_KEY,
                    "Idempotency-Key must be 1-255 printable characters",
                    {},
                ),
            )
            return
        caller = self._caller(scope)
        if caller is None:  # an invalid token: let the application answer 401
            await self.app(scope, receive, send)
            return
        body, replay_receive = await _read_body(receive)
        fingerprint = self.fingerprint(scope, body)
        try:
            stored = await self.store.claim(caller, key, fingerprint)
        except IdempotencyError as exc:
            await _send(send, _problem(scope, exc.status, exc.code, exc.detail, exc.headers))
            return
        if stored is not None:
            replayed = Stored(
                stored.status, [*stored.headers, (REPLAYED_HEADER, b"true")], stored.body
            )
            await _send(send, replayed)
            return
        await self._run(scope, replay_receive, send, Claim(caller, key))

    def fingerprint(self, scope: Scope, body: bytes) -> str:
        """The keyed fingerprint of a request: method, path, query and body."""
        parts = [scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b"")]
        message = b"\0".join([*parts, body])
        return hmac.new(self._fingerprint_key, message, hashlib.sha256).hexdigest()

    def _caller(self, scope: Scope) -> str | None:
        auth = header(scope, b"authorization")
        if not auth:
            return "anonymous"
        try:  # the token's subject only scopes the key; the application judges the account
            return str(self.tokens.verify(bearer_token(auth) or "").user_id)
        except AuthenticationFailed:
            return None

    async def _run(self, scope: Scope, receive: Receive, send: Send, claim: Claim) -> None:
        captured = _Captured()
        try:
            await self.app(scope, receive, captured.send)
        except Exception:
            # The error handler has logged it and (usually) rendered a 500: free the key for a
            # retry, and still answer.
            await self.store.release(claim)
            if captured.body:
                await _send(send, captured.stored())
                return
            raise
        except BaseException:
            await self.store.release(claim)
            raise
        answer = captured.stored()
        if final(answer.status, answer.headers):
            kept = [(k, v) for k, v in answer.headers if k.lower() in _KEPT_HEADERS]
            await self.store.complete(claim, Stored(answer.status, kept, answer.body))
        else:
            await self.store.release(claim)
        await _send(send, answer)


class _Captured:
    """The response of a keyed request as the application sends it, kept to store and send."""

    __slots__ = ("body", "headers", "status")

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []

    async def send(self, message: Message) -> None:
        """The ``send`` the application is given: keeps what it sends."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body.append(message.get("body", b""))

    def stored(self) -> Stored:
        """The response as it would be stored (all of it)."""
        return Stored(self.status, self.headers, b"".join(self.body))


def final(status: int, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether an answer says what became of the request, and may be stored and replayed.

    Not final: server errors, "come back later" statuses, anything carrying ``Retry-After``,
    and anything its sender marked ``Cache-Control: no-store``.
    """
    if status >= 500 or status in _NOT_YET:
        return False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"retry-after" or (lowered == b"cache-control" and b"no-store" in value):
            return False
    return True


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _send(send: Send, stored: Stored) -> None:
    headers = [(k, v) for k, v in stored.headers if k != b"content-length"]
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})
