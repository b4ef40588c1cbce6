"""Request-scoped FastAPI dependencies shared by every module's routes.

Every dependency is ``async def``: FastAPI runs plain ``def`` dependencies in a worker thread,
and a thread hop per dependency was most of the cost of a product read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mercato.kernel.errors import AuthenticationFailed, InvalidValue, PermissionDenied
from mercato.platform.security import Principal, TokenService

_bearer = HTTPBearer(auto_error=False, description="An access token from POST /v1/auth/token")


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("unauthenticated", "a bearer token is required")
    tokens: TokenService = request.app.state.tokens
    return tokens.verify(credentials.credentials)


async def _staff(
    request: Request, principal: Annotated[Principal, Depends(_principal)]
) -> Principal:
    if not principal.is_staff:
        raise PermissionDenied("staff_only", "only staff may do this")
    # Staff powers end with the account, not with the token: one indexed read per staff call.
    account_active: Callable[[str], Awaitable[bool]] = request.app.state.account_active
    if not await account_active(principal.user_id):
        raise AuthenticationFailed("account_inactive", "this account has been deactivated")
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """The caller when the request carries a bearer token, else None (for public reads)."""
    # On the hottest read paths (catalog browsing): reads the header itself instead of through
    # HTTPBearer, which costs a sub-dependency per request.
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("unauthenticated", "a bearer token is required")
    tokens: TokenService = request.app.state.tokens
    return tokens.verify(token.strip())


def parse_if_match(value: str | None) -> int | None:
    """The version in an ``If-Match`` header (``"3"``, ``W/"3"`` or ``3``); None if absent."""
    if value is None or value.strip() == "*":  # "*" means any current version
        return None
    cleaned = value.strip().removeprefix("W/").strip('"')
    # isdigit alone accepts "²", which a latin-1 header can carry and int() refuses
    if not (cleaned.isascii() and cleaned.isdigit()) or len(cleaned) > 12:
        raise InvalidValue(
            "invalid_if_match", 'If-Match must be a version tag like "3"', field="If-Match"
        )
    return int(cleaned)


CurrentUser = Annotated[Principal, Depends(_principal)]
StaffUser = Annotated[Principal, Depends(_staff)]
MaybeUser = Annotated[Principal | None, Depends(optional_principal)]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=64)]

# Path ids are UUIDs (36 characters); anything longer is refused before it reaches a query.
ResourceId = Annotated[str, Path(min_length=1, max_length=36)]
