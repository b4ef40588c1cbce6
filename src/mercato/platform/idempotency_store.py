"""Where idempotency keys are kept: claimed, completed, released and purged (see
:mod:`mercato.platform.idempotency` for the rules the middleware applies with them)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import sqlalchemy as sa

from mercato.kernel.clock import utcnow
from mercato.platform.db import Database, UniqueViolation, metadata, sql
from mercato.platform.error_codes import ErrorCode

# Written over fingerprints stored before they were keyed (migration 0004): such a row still
# replays its answer for its key, whatever the fingerprint of the repeat.
UNKNOWN_FINGERPRINT = ""

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


@dataclass(frozen=True, slots=True)
class Claim:
    """A key the request being served has claimed."""

    scope: str
    key: str


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
                    ErrorCode.IDEMPOTENCY_IN_PROGRESS,
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
        if row["fingerprint"] not in (fingerprint, UNKNOWN_FINGERPRINT):
            raise IdempotencyError(
                422,
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
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

    async def complete(self, claim: Claim, stored: Stored) -> None:
        """Store a final response for the claimed key."""
        async with self.db.transaction() as conn:
            await conn.execute(
                _COMPLETE,
                scope=claim.scope,
                key=claim.key,
                status=stored.status,
                body=stored.body,
                headers=orjson.dumps(
                    [(k.decode(), v.decode()) for k, v in stored.headers]
                ).decode(),
            )

    async def release(self, claim: Claim) -> None:
        """Forget a claim whose request gave no final answer, so a retry runs again."""
        async with self.db.transaction() as conn:
            await conn.execute(_RELEASE, scope=claim.scope, key=claim.key)

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
