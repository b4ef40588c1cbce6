"""Idempotency keys with Stripe's semantics, for every unsafe endpoint.

A client sends ``Idempotency-Key: <1-255 printable characters>`` with a POST, PUT, PATCH or
DELETE. Keys are scoped to the caller (the token's subject; ``anonymous`` without a token).

* The first request with a key claims it (a ``running`` row with a lease) and runs.
* Its response (status, body and the headers a client needs) is stored **in the same
  transaction as the request's last database effects**: while a claimed request runs, the unit of
  work does not commit its final transaction itself but hands it to this middleware, which writes
  the response into it and commits both together. A crash therefore leaves either nothing (the
  claim expires and the request can run again) or the effects *and* the response.
* A repeat with the same key and the same request (method, path, query, body) gets the stored
  response replayed, marked ``Idempotent-Replayed: true``.
* A repeat while the first is still running waits up to ``wait_s`` for it to finish and then
  replays it; if it is still running after that, it gets 409 ``idempotency_in_progress``.
* The same key with a different request gets 422 ``idempotency_key_reused``.
* A request that failed with a 5xx or a 429 and changed nothing releases its key, so it can be
  retried.

Rows are kept for ``retention`` (24 h by default) and then purged by a worker.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mercato.kernel.clock import utcnow
from mercato.kernel.errors import AuthenticationFailed
from mercato.platform.db import Connection, Database, UniqueViolation, metadata, sql
from mercato.platform.security import TokenService

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REPLAYED_HEADER = b"idempotent-replayed"
_KEPT_HEADERS = frozenset({b"content-type", b"location", b"etag", b"retry-after"})

idempotency_keys = sa.Table(
    "platform_idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # running | done
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("response_status", sa.Integer(), nullable=True),
    sa.Column("response_headers", sa.Text(), nullable=True),
    sa.Column("response_body", sa.LargeBinary(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_platform_idempotency_keys_created", "created_at"),
)

_k = idempotency_keys.c
_bind = sa.bindparam
_CLAIM = sql(
    sa.insert(idempotency_keys).values(
        scope=_bind("scope"),
        key=_bind("key"),
        fingerprint=_bind("fingerprint"),
        state="running",
        locked_until=_bind("until"),
        created_at=_bind("now"),
    )
)
_GET = sql(sa.select(idempotency_keys).where(_k.scope == _bind("scope"), _k.key == _bind("key")))
_TAKE_OVER = sql(
    sa.update(idempotency_keys)
    .where(
        _k.scope == _bind("scope"),
        _k.key == _bind("key"),
        _k.state == "running",
        _k.locked_until == _bind("seen"),
    )
    .values(locked_until=_bind("until"))
)
_COMPLETE = sql(
    sa.update(idempotency_keys)
    .where(_k.scope == _bind("scope"), _k.key == _bind("key"))
    .values(
        state="done",
        response_status=_bind("status"),
        response_headers=_bind("headers"),
        response_body=_bind("body"),
    )
)
_RELEASE = sql(
    sa.delete(idempotency_keys).where(
        _k.scope == _bind("scope"), _k.key == _bind("key"), _k.state == "running"
    )
)
_PURGE = sql(sa.delete(idempotency_keys).where(_k.created_at < _bind("before")))


@dataclass
class Deferred:
    """A unit of work that ran to completion but whose COMMIT waits for the response."""

    exit: Callable[[type[BaseException] | None, BaseException | None, Any], Awaitable[Any]]
    conn: Connection
    after_commit: Callable[[], None]


@dataclass
class IdempotencyContext:
    """The claimed key of the request being served, and its deferred final transaction."""

    scope: str
    key: str
    deferred: Deferred | None = field(default=None)

    async def flush(self) -> None:
        """Commit the deferred transaction (another unit of work is about to start)."""
        pending, self.deferred = self.deferred, None
        if pending is not None:
            await pending.exit(None, None, None)
            pending.after_commit()

    async def abandon(self, exc: BaseException) -> None:
        """Roll the deferred transaction back (the request was cancelled)."""
        pending, self.deferred = self.deferred, None
        if pending is not None:
            await pending.exit(type(exc), exc, exc.__traceback__)


_current: ContextVar[IdempotencyContext | None] = ContextVar("mercato_idempotency", default=None)


def current() -> IdempotencyContext | None:
    """The idempotency context of the request being served, if it carries a key."""
    return _current.get()


class IdempotencyError(Exception):
    def __init__(self, status: int, code: str, detail: str, **headers: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


@dataclass(frozen=True, slots=True)
class Stored:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class IdempotencyStore:
    """Claims, completes, releases and purges keys."""

    def __init__(self, db: Database, *, lease_s: float = 60, wait_s: float = 5) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_s)
        self.wait_s = wait_s

    async def claim(self, scope: str, key: str, fingerprint: str) -> Stored | None:
        """Claim the key (None: go ahead) or return the stored response to replay."""
        deadline = asyncio.get_running_loop().time() + self.wait_s
        delay = 0.01
        while True:
            now = utcnow()
            try:
                async with self.db.transaction() as conn:
                    await conn.execute(
                        _CLAIM,
                        scope=scope,
                        key=key,
                        fingerprint=fingerprint,
                        until=now + self.lease,
                        now=now,
                    )
                return None
            except UniqueViolation:
                pass
            outcome = await self._existing(scope, key, fingerprint, now)
            if outcome is not _WAIT:
                return outcome  # type: ignore[return-value]
            if asyncio.get_running_loop().time() >= deadline:
                raise IdempotencyError(
                    409,
                    "idempotency_in_progress",
                    "a request with this Idempotency-Key is still being processed",
                    **{"Retry-After": "1"},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _existing(
        self, scope: str, key: str, fingerprint: str, now: datetime
    ) -> Stored | object | None:
        async with self.db.connection() as conn:
            row = await conn.fetchrow(_GET, scope=scope, key=key)
        if row is None:
            return _WAIT  # released meanwhile: try to claim again
        if row["fingerprint"] != fingerprint:
            raise IdempotencyError(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
        if row["state"] == "done":
            headers = [(k.encode(), v.encode()) for k, v in orjson.loads(row["response_headers"])]
            return Stored(int(row["response_status"]), headers, bytes(row["response_body"]))
        if row["locked_until"] < now:
            async with self.db.transaction() as conn:
                taken = await conn.execute(
                    _TAKE_OVER,
                    scope=scope,
                    key=key,
                    seen=row["locked_until"],
                    until=now + self.lease,
                )
            if taken:
                return None
        return _WAIT

    async def complete(self, ctx: IdempotencyContext, stored: Stored) -> None:
        """Store the response: in the deferred transaction if there is one, else on its own."""
        values = {
            "scope": ctx.scope,
            "key": ctx.key,
            "status": stored.status,
            "body": stored.body,
            "headers": orjson.dumps([(k.decode(), v.decode()) for k, v in stored.headers]).decode(),
        }
        pending, ctx.deferred = ctx.deferred, None
        if pending is not None:
            try:
                await pending.conn.execute(_COMPLETE, **values)
            except BaseException as exc:
                await pending.exit(type(exc), exc, exc.__traceback__)
                raise
            await pending.exit(None, None, None)
            pending.after_commit()
            return
        async with self.db.transaction() as conn:
            # "not now" answers that changed nothing (5xx, 429 too many attempts) are not final:
            # the key is freed so the same request can run once it may
            if stored.status >= 500 or stored.status == 429:
                await conn.execute(_RELEASE, scope=ctx.scope, key=ctx.key)
            else:
                await conn.execute(_COMPLETE, **values)

    async def release(self, ctx: IdempotencyContext) -> None:
        """Forget a claim whose request changed nothing and produced no response."""
        async with self.db.transaction() as conn:
            await conn.execute(_RELEASE, scope=ctx.scope, key=ctx.key)

    async def purge(self, *, retention: timedelta) -> int:
        """Delete keys older than the retention period; returns how many."""
        async with self.db.transaction() as conn:
            purged: int = await conn.execute(_PURGE, before=utcnow() - retention)
        return purged


_WAIT = object()


class IdempotencyPurger:
    """Worker: deletes idempotency keys past their retention."""

    name = "idempotency-purger"

    def __init__(self, store: IdempotencyStore, *, retention_s: float) -> None:
        self.store = store
        self.retention = timedelta(seconds=retention_s)

    async def run_once(self) -> int:
        """Purge expired keys (0 when none: the runner then sleeps)."""
        return await self.store.purge(retention=self.retention)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


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

    def __init__(self, app: ASGIApp, *, store: IdempotencyStore, tokens: TokenService) -> None:
        self.app = app
        self.store = store
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] not in UNSAFE:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 255 or not key.isprintable():
            await _send(
                send,
                _problem(
                    scope,
                    422,
                    "invalid_idempotency_key",
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
        fingerprint = hashlib.sha256(
            b"\0".join(
                [
                    scope["method"].encode(),
                    scope["path"].encode(),
                    scope.get("query_string", b""),
                    body,
                ]
            )
        ).hexdigest()
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
        await self._run(scope, replay_receive, send, IdempotencyContext(caller, key))

    def _caller(self, scope: Scope) -> str | None:
        auth = _header(scope, b"authorization")
        if not auth:
            return "anonymous"
        token = auth.removeprefix("Bearer ").removeprefix("bearer ").strip()
        try:
            return str(self.tokens.verify(token).user_id)
        except AuthenticationFailed:
            return None

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, ctx: IdempotencyContext
    ) -> None:
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))

        token = _current.set(ctx)
        try:
            await self.app(scope, receive, capture)
        except Exception as exc:
            # The error handler has logged it and (usually) rendered a 500: undo the deferred
            # effects, free the key for a retry, and still answer.
            await ctx.abandon(exc)
            await self.store.release(ctx)
            if captured["body"]:
                await _send(
                    send,
                    Stored(captured["status"], captured["headers"], b"".join(captured["body"])),
                )
                return
            raise
        except BaseException as exc:
            await ctx.abandon(exc)
            await self.store.release(ctx)
            raise
        finally:
            _current.reset(token)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() in _KEPT_HEADERS]
        stored = Stored(captured["status"], headers, b"".join(captured["body"]))
        await self.store.complete(ctx, stored)
        await _send(send, Stored(stored.status, captured["headers"], stored.body))


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
