"""Bearer tokens (JWT, HS256) and password hashing (argon2id, off the event loop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

import anyio.to_thread
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mercato.kernel.clock import utcnow
from mercato.kernel.errors import AuthenticationFailed


class Role(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"


class AuthError(StrEnum):
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"


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
    """Issues and verifies access tokens."""

    def __init__(self, secret: str, *, ttl_s: int, issuer: str = "mercato") -> None:
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_s)
        self._issuer = issuer

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
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=self._issuer,
                options={"require": ["exp", "sub", "iss"]},
            )
            return Principal(str(claims["sub"]), Role(claims["role"]), int(claims["exp"]))
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed(AuthError.TOKEN_EXPIRED, "the token has expired") from None
        except (jwt.PyJWTError, KeyError, ValueError):
            raise AuthenticationFailed(AuthError.INVALID_TOKEN, "the token is not valid") from None


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
