"""Console sessions: a signed cookie holding an access token, and CSRF tokens derived from it.

The cookie's value is an access token issued by the customers module at sign-in (a JWT signed
with the server secret), so a session is exactly as good as the account behind it: every
request checks the account through the application's Authenticator, and a deactivated or
demoted account loses the console on its next request. CSRF tokens are an HMAC of the session
token under a key derived from the server secret; the sign-in form, which has no session yet,
uses a random value also set as a cookie (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from mercato.kernel.errors import AuthenticationFailed, DomainError, PermissionDenied
from mercato.platform.security import Authenticator, Principal

COOKIE = "mercato_console"
LOGIN_COOKIE = "mercato_console_login"
PATH = "/console"


class SignInRequired(Exception):
    """The request has no session that may use the console; ``reason`` says why.

    ``refused`` tells an account that may not use the console (deactivated, not staff: 403)
    from a missing or ended session (401)."""

    def __init__(self, reason: str = "", *, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused


class CsrfRefused(Exception):
    """A form arrived without the token of the session it claims to come from."""


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in member of staff."""

    principal: Principal
    token: str
    csrf: str


class Keys:
    """The console's secrets, derived from the server secret."""

    def __init__(self, secret: str) -> None:
        self._csrf_key = hmac.new(secret.encode(), b"mercato-console-csrf", hashlib.sha256).digest()

    def csrf_for(self, token: str) -> str:
        """The CSRF token of a session."""
        return hmac.new(self._csrf_key, token.encode(), hashlib.sha256).hexdigest()


def new_login_nonce() -> str:
    """A random value for the sign-in form and its cookie."""
    return secrets.token_urlsafe(24)


def same(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two tokens, neither of which may be empty."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def open_session(token: str | None, *, auth: Authenticator, keys: Keys) -> Session:
    """The staff session of a cookie; SignInRequired when there is none that may act now."""
    if not token:
        raise SignInRequired()
    try:
        principal = await auth.verify(token)
    except AuthenticationFailed:
        raise SignInRequired("Your session has ended. Please sign in again.") from None
    except PermissionDenied as exc:
        raise SignInRequired(_denied(exc), refused=True) from None
    if not principal.is_staff:
        raise SignInRequired("This account is not a staff account.", refused=True)
    return Session(principal, token, keys.csrf_for(token))


def _denied(exc: DomainError) -> str:
    if exc.code == "account_inactive":
        return "This account has been deactivated."
    return "Your account has changed. Please sign in again."
