"""Bearer tokens (JWT, HS256), who a request comes from, and password hashing (argon2id).

A token only says who the caller is. What the caller may do comes from the account as it is
now: :class:`Authenticator` is the one place that turns a bearer token into a
:class:`Principal`, and it refuses the token unless its account exists, is active and still
has the role the token names.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

import anyio.to_thread
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mercato.kernel.clock import utcnow
from mercato.kernel.errors import AuthenticationFailed, PermissionDenied
from mercato.platform.error_codes import ErrorCode


class Role(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"


ACCOUNT_CACHE_S = 1.0
"""How long a process may answer from its memory of an account: at most one second."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user id and a role, as the token says."""

    user_id: str
    role: Role
    expires_at: int | None = field(default=None, compare=False)  # the token's exp (Unix time)

    @property
    def is_staff(self) -> bool:
        """Whether the caller is a member of staff."""
        return self.role is Role.STAFF


class TokenService:
    """Issues and verifies access tokens.

    A token that verified is remembered, by its exact text, until it expires: its signature,
    issuer and claims cannot change, so checking them again on every request of its lifetime
    (``jwt.decode``: base64, JSON, HMAC) would only repeat the same answer. What can change, the
    account behind it, is not remembered here: :class:`Authenticator` checks the account on
    every request.
    """

    def __init__(
        self,
        secret: str,
        *,
        ttl_s: int,
        issuer: str = "mercato",
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_s)
        self._issuer = issuer
        self._max_cached = max_cached
        self._clock = clock  # wall time, as a token's exp is
        self._verified: dict[str, tuple[int, Principal]] = {}  # token -> (its exp, principal)

    def issue(self, principal: Principal) -> tuple[str, int]:
        """A signed token for the principal and its lifetime in seconds."""
        now = utcnow()
        claims = {
            "sub": principal.user_id,
            "role": principal.role.value,
            "iss": self._issuer,
            "iat": int(now.timestamp()),
            "exp": int((now + self._ttl).timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256"), int(self._ttl.total_seconds())

    def verify(self, token: str) -> Principal:
        """The principal a token names; AuthenticationFailed if it is forged, malformed or old."""
        known = self._verified.get(token)
        # PyJWT's rule: valid while now < exp; an expired token is decoded again, which refuses it
        if known is not None and self._clock() < known[0]:
            return known[1]
        exp, principal = self._decode(token)
        if len(self._verified) >= self._max_cached:
            self._forget_expired()
        self._verified[token] = (exp, principal)
        return principal

    def _forget_expired(self) -> None:
        now = self._clock()
        fresh = {token: known for token, known in self._verified.items() if now < known[0]}
        self._verified = fresh if len(fresh) < self._max_cached else {}

    def _decode(self, token: str) -> tuple[int, Principal]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=self._issuer,
                options={"require": ["exp", "sub", "iss"]},
            )
            exp = int(claims["exp"])
            return exp, Principal(str(claims["sub"]), Role(claims["role"]), exp)
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed(ErrorCode.TOKEN_EXPIRED, "the token has expired") from None
        except (jwt.PyJWTError, KeyError, ValueError):
            raise AuthenticationFailed(ErrorCode.INVALID_TOKEN, "the token is not valid") from None


@dataclass(frozen=True, slots=True)
class Account:
    """The authority an account holds now: its role and whether it is active."""

    role: Role
    active: bool


AccountLookup = Callable[[str], Awaitable[Account | None]]
AccountsLookup = Callable[[Sequence[str]], Awaitable[Mapping[str, Account]]]
"""Several accounts at once, by id; an unknown one is left out."""

REFRESHED_TOGETHER = 100
"""At most this many accounts are read in one lookup (:meth:`Authenticator._account`)."""


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header value; None when there is no header.

    Any other scheme, or an empty token, is AuthenticationFailed.
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed(ErrorCode.UNAUTHENTICATED, "a bearer token is required")
    return token


class Authenticator:
    """Turns a bearer token into a principal whose account may act now.

    A token is accepted only when its signature and expiry hold *and* its account exists
    (else 401 ``unknown_account``), is active (else 403 ``account_inactive``) and has the role
    the token names (else 403 ``role_changed``: a demoted or promoted account logs in again).

    Account lookups are remembered per process for at most :data:`ACCOUNT_CACHE_S` (one
    second), counted from when the lookup started: a change of an account made by any process
    is in force everywhere within one second, and at once in the process that made it
    (:meth:`forget`). Reads stay cheap: a busy account costs one indexed read per second.

    With ``lookup_many``, the lookup an account's expired memory needs also reads again every
    account asked for since its own lookup that is at least half-way through its second (up
    to :data:`REFRESHED_TOGETHER`): a process serving many busy accounts reads them in a few
    lookups a second instead of one per account per second, and each is still remembered for
    at most a second from the start of the lookup that read it.
    """

    def __init__(
        self,
        tokens: TokenService,
        lookup: AccountLookup,
        *,
        lookup_many: AccountsLookup | None = None,
        cache_s: float = ACCOUNT_CACHE_S,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= cache_s <= ACCOUNT_CACHE_S:
            raise ValueError(f"cache_s must be between 0 and {ACCOUNT_CACHE_S} seconds")
        self._tokens = tokens
        self._lookup = lookup
        self._lookup_many = lookup_many
        self._cache_s = cache_s
        self._max_cached = max_cached
        self._clock = clock
        self._cached: dict[str, tuple[float, Account | None]] = {}
        self._forgotten = 0  # a lookup that overlapped a forget() is not remembered
        self._asked: set[str] = set()  # remembered accounts asked for since their lookup

    async def principal(self, authorization: str | None) -> Principal | None:
        """The caller named by an ``Authorization`` header value; None when there is none."""
        token = bearer_token(authorization)
        return None if token is None else await self.verify(token)

    async def require(self, authorization: str | None) -> Principal:
        """The caller named by an ``Authorization`` header value, which must be there."""
        principal = await self.principal(authorization)
        if principal is None:
            raise AuthenticationFailed(ErrorCode.UNAUTHENTICATED, "a bearer token is required")
        return principal

    async def verify(self, token: str) -> Principal:
        """The principal of a bearer token, if the token and its account both allow it."""
        principal = self._tokens.verify(token)
        await self.check(principal)
        return principal

    async def check(self, principal: Principal) -> None:
        """Raise unless the principal's account exists, is active and has its role."""
        account = await self._account(principal.user_id)
        if account is None:
            raise AuthenticationFailed(
                ErrorCode.UNKNOWN_ACCOUNT, "the token's account does not exist"
            )
        if not account.active:
            raise PermissionDenied(ErrorCode.ACCOUNT_INACTIVE, "this account has been deactivated")
        if account.role is not principal.role:
            raise PermissionDenied(
                ErrorCode.ROLE_CHANGED, "this account's role has changed; log in again"
            )

    async def allowed(self, principal: Principal) -> bool:
        """Whether the principal may still act (for held responses that check again)."""
        try:
            await self.check(principal)
        except (AuthenticationFailed, PermissionDenied):
            return False
        return True

    def forget(self, user_id: str) -> None:
        """Drop what this process remembers of an account (it has just changed)."""
        self._forgotten += 1
        self._cached.pop(user_id, None)
        self._asked.discard(user_id)

    async def _account(self, user_id: str) -> Account | None:
        now = self._clock()
        cached = self._cached.get(user_id)
        if cached is not None and now - cached[0] < self._cache_s:
            if self._lookup_many is not None:
                self._asked.add(user_id)
            return cached[1]
        forgotten = self._forgotten
        if self._lookup_many is None:
            found = {user_id: await self._lookup(user_id)}
        else:
            ids = self._due(now, user_id)
            many = await self._lookup_many(ids)
            found = {id_: many.get(id_) for id_ in ids}
        if self._cache_s > 0 and forgotten == self._forgotten:
            if len(self._cached) + len(found) > self._max_cached:
                self._evict(now)
            for id_, account in found.items():
                self._cached[id_] = (now, account)
        return found[user_id]

    def _due(self, now: float, user_id: str) -> list[str]:
        """``user_id`` and the accounts asked for since their lookup that are at least half-way
        through their memory, to be read together."""
        half = self._cache_s / 2
        due = [user_id]
        for other in self._asked:
            cached = self._cached.get(other)
            if other != user_id and cached is not None and now - cached[0] >= half:
                due.append(other)
                if len(due) >= REFRESHED_TOGETHER:
                    break
        self._asked.difference_update(due)
        return due

    def _evict(self, now: float) -> None:
        fresh = {k: v for k, v in self._cached.items() if now - v[0] < self._cache_s}
        self._cached = fresh if len(fresh) < self._max_cached else {}
        self._asked.intersection_update(self._cached)


class PasswordHashing:
    """argon2id hashing run in a worker thread, so logins never block the event loop."""

    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verified against when the user does not exist, so timing does not reveal accounts.
        self._dummy = self._hasher.hash("mercato-timing-equaliser")

    async def hash(self, password: str) -> str:
        """A new salted hash of the password."""
        return await anyio.to_thread.run_sync(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether the password matches; always spends the same work."""
        target = stored_hash or self._dummy

        def check() -> bool:
            try:
                return bool(self._hasher.verify(target, password))
            except (VerificationError, InvalidHashError):
                return False

        matched = await anyio.to_thread.run_sync(check)
        return matched and stored_hash is not None
