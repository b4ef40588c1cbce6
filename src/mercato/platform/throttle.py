"""Brute-force protection: failed attempts counted per subject in the database every process shares.

A :class:`Limit` allows ``max_failures`` failures of one kind (logging in, applying a discount
code) per subject (an account, a client address) in a fixed window of ``window_s`` seconds that
starts with the subject's first failure. The counters live in ``platform_throttle``, so every
worker process and every replica sees the same count: PostgreSQL in production, the SQLite file
when embedded.

Every attempt takes its place in the count *before* it is judged, with one atomic upsert per
subject (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``, no read-modify-write), all in one
transaction: if any subject is then over its limit the transaction rolls back and the attempt is
refused with 429 ``too_many_attempts`` and ``Retry-After`` (the seconds until that window ends)
without being judged, so concurrent guesses can never exceed the limit. Once judged, an attempt
that failed keeps its place; one that succeeded, or failed for an unrelated reason, gives it back
(a limit with ``clear_on_success``, such as an account's logins, forgets all its failures
instead). Refused attempts count nowhere: a locked-out user retrying does not push their
address over its own limit.

Subjects are stored as keyed BLAKE2b digests, never as e-mails or addresses: the table says how
often something failed, not who tried. :class:`ThrottlePurger` deletes windows that have ended.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from mercato.kernel.clock import utcnow
from mercato.kernel.errors import TooManyRequests
from mercato.platform.db import (
    Connection,
    Database,
    DatabaseError,
    metadata,
    run_in_transaction,
    sql,
)
from mercato.platform.error_codes import ErrorCode

log = logging.getLogger("mercato.throttle")

throttle = sa.Table(
    "platform_throttle",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("subject", sa.String(64), primary_key=True),  # keyed digest, see Throttle.digest
    sa.Column("failures", sa.Integer(), nullable=False),
    sa.Column("window_ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_platform_throttle_window_ends_at", "window_ends_at"),
)

_t = throttle.c
_bind = sa.bindparam
_key = (_t.kind == _bind("kind")) & (_t.subject == _bind("subject"))
_insert = postgresql.insert(throttle).values(
    kind=_bind("kind"), subject=_bind("subject"), failures=1, window_ends_at=_bind("ends")
)
_ended = _t.window_ends_at <= _bind("now")
# One statement per subject: a new window, or one more in the current one. The same Core
# statement compiles for SQLite, whose upsert has the same syntax.
_TAKE = sql(
    _insert.on_conflict_do_update(
        index_elements=[_t.kind, _t.subject],
        set_={
            "failures": sa.case((_ended, 1), else_=_t.failures + 1),
            "window_ends_at": sa.case(
                (_ended, _insert.excluded.window_ends_at), else_=_t.window_ends_at
            ),
        },
    ).returning(_t.failures, _t.window_ends_at)
)
# Giving back a place in the window it was taken in: the last one deletes the row, so rows exist
# only for subjects with failures (or attempts under way).
_same_window = _t.window_ends_at == _bind("window")
_GIVE_BACK_LAST = sql(sa.delete(throttle).where(_key, _same_window, _t.failures <= 1))
_GIVE_BACK = sql(
    sa.update(throttle).where(_key, _same_window, _t.failures > 1).values(failures=_t.failures - 1)
)
_CLEAR = sql(sa.delete(throttle).where(_key))
_PURGE = sql(sa.delete(throttle).where(_t.window_ends_at <= _bind("now")))


class TooManyAttempts(TooManyRequests):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            ErrorCode.TOO_MANY_ATTEMPTS,
            f"too many failed attempts; try again in {retry_after} s",
            retry_after=retry_after,
        )


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``max_failures`` failures per subject of ``kind`` in ``window_s`` seconds."""

    kind: str
    max_failures: int
    window_s: float
    clear_on_success: bool = False


@dataclass(frozen=True, slots=True)
class _Taken:
    limit: Limit
    subject: str
    window: datetime


class _Refused(Exception):
    def __init__(self, until: datetime) -> None:
        self.until = until


class Throttle:
    """Counts attempts against limits; see the module docstring."""

    def __init__(self, db: Database, *, secret: str) -> None:
        self.db = db
        self._key = hashlib.sha256(b"mercato-throttle\0" + secret.encode()).digest()

    def digest(self, value: str) -> str:
        """The stored form of a subject: a keyed hash, so the table names no one."""
        return hashlib.blake2b(value.encode(), key=self._key, digest_size=32).hexdigest()

    @asynccontextmanager
    async def attempt(
        self, subjects: Sequence[tuple[Limit, str]], *, failed: Callable[[Exception], bool]
    ) -> AsyncIterator[None]:
        """Run the block as one attempt; ``failed`` says which of its errors are failures.

        Raises :class:`TooManyAttempts` before the block when a subject is over its limit.
        """
        taken = await self._take(subjects)
        try:
            yield
        except Exception as exc:
            if not failed(exc):
                await self._settle(taken)
            raise
        await self._settle(taken)

    async def _take(self, subjects: Sequence[tuple[Limit, str]]) -> list[_Taken]:
        now = utcnow()
        # a fixed order, so two attempts sharing subjects cannot deadlock
        unique = {(limit.kind, self.digest(value)): limit for limit, value in subjects}
        keyed = sorted(unique.items())

        async def work(conn: Connection) -> list[_Taken]:
            taken, over = [], []
            for (kind, subject), limit in keyed:
                ends = now + timedelta(seconds=limit.window_s)
                row = await conn.fetchrow(_TAKE, kind=kind, subject=subject, now=now, ends=ends)
                assert row is not None
                if row["failures"] > limit.max_failures:
                    over.append(row["window_ends_at"])
                taken.append(_Taken(limit, subject, row["window_ends_at"]))
            if over:
                raise _Refused(max(over))  # rolls back every count taken
            return taken

        try:
            return await run_in_transaction(self.db, work)
        except _Refused as refused:
            wait = (refused.until - utcnow()).total_seconds()
            raise TooManyAttempts(max(1, math.ceil(wait))) from None

    async def _settle(self, taken: list[_Taken]) -> None:
        """Give back the places of an attempt that did not fail (or clear its subjects)."""

        async def work(conn: Connection) -> None:
            for t in taken:
                if t.limit.clear_on_success:
                    await conn.execute(_CLEAR, kind=t.limit.kind, subject=t.subject)
                    continue
                key = {"kind": t.limit.kind, "subject": t.subject, "window": t.window}
                if not await conn.execute(_GIVE_BACK_LAST, **key):
                    await conn.execute(_GIVE_BACK, **key)

        try:
            await run_in_transaction(self.db, work)
        except DatabaseError as exc:
            # the attempt's own answer stands; its place counts as a failure until the window ends
            log.warning("could not give back a throttle place: %s", exc)

    async def purge(self) -> int:
        """Delete the counters of windows that have ended; returns how many."""
        async with self.db.transaction() as conn:
            purged: int = await conn.execute(_PURGE, now=utcnow())
        return purged


@dataclass(frozen=True, slots=True)
class Guard:
    """One kind of attempt, limited per subject (an account) and per client address."""

    throttle: Throttle
    per_subject: Limit
    per_address: Limit

    def attempt(
        self, subject: str, *, address: str | None, failed: Callable[[Exception], bool]
    ) -> AbstractAsyncContextManager[None]:
        """An attempt by ``subject`` from ``address`` (None: not over HTTP, no address limit)."""
        subjects = [(self.per_subject, subject)]
        if address is not None:
            subjects.append((self.per_address, address))
        return self.throttle.attempt(subjects, failed=failed)


def client_address(client: tuple[str, int] | None) -> str:
    """The address limits count by: the ASGI scope's client, an IPv6 address by its /64.

    Behind a proxy the peer is the proxy: uvicorn's proxy-headers support (on in ``mercato
    serve``) puts the client from ``X-Forwarded-For`` into the scope, but only for proxies in
    ``MERCATO_FORWARDED_ALLOW_IPS`` (127.0.0.1 by default). One IPv6 host usually holds a whole /64.
    """
    if client is None:
        return "unknown"
    host = client[0]
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class ThrottlePurger:
    """Worker: deletes the counters of windows that have ended."""

    name = "throttle-purger"

    def __init__(self, throttle: Throttle) -> None:
        self.throttle = throttle

    async def run_once(self) -> int:
        """Purge ended windows (0 when none: the runner then sleeps)."""
        return await self.throttle.purge()
