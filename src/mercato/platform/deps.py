"""Request-scoped FastAPI dependencies shared by every module's routes.

Every dependency is ``async def``: FastAPI runs plain ``def`` dependencies in a worker thread,
and a thread hop per dependency was most of the cost of a product read. Who the caller is, and
whether their account may act, is decided by the application's
:class:`~mercato.platform.security.Authenticator` (``platform_state(app).auth``) and nowhere
else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPBearer

from mercato.kernel.errors import InvalidValue, PermissionDenied
from mercato.platform.appstate import platform_state
from mercato.platform.error_codes import ErrorCode
from mercato.platform.held import IF_MATCH_PATTERN, VERSION_TAG
from mercato.platform.schemas import Text
from mercato.platform.security import Authenticator, Principal

# Only documents the scheme in OpenAPI; the header is read by the Authenticator.
_bearer = HTTPBearer(auto_error=False, description="An access token from POST /v1/auth/token")


def authenticator(request: Request) -> Authenticator:
    """The application's authenticator."""
    return platform_state(request).auth


async def _principal(request: Request, _: Annotated[object, Depends(_bearer)]) -> Principal:
    return await authenticator(request).require(request.headers.get("authorization"))


async def _staff(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if not principal.is_staff:
        raise PermissionDenied(ErrorCode.STAFF_ONLY, "only staff may do this")
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """The caller when the request carries a bearer token, else None (for public reads)."""
    # On the hottest read paths (catalog browsing): no sub-dependency, just the header.
    return await authenticator(request).principal(request.headers.get("authorization"))


def parse_if_match(value: str | None) -> int | None:
    """The version in an ``If-Match`` header (``"3"``, ``W/"3"`` or ``3``); None if absent.

    The grammar is :data:`~mercato.platform.streaming.VERSION_TAG`, the same the OpenAPI
    document states as the header's pattern.
    """
    if value is None or value.strip() == "*":  # "*" means any current version
        return None
    tag = VERSION_TAG.fullmatch(value.strip(" \t"))
    if tag is None:
        raise InvalidValue(
            ErrorCode.INVALID_IF_MATCH, 'If-Match must be a version tag like "3"', field="If-Match"
        )
    return int(tag.group(1))


# For routes that read the token themselves (held responses): documents the scheme only.
BEARER_SCHEME = Depends(_bearer)

CurrentUser = Annotated[Principal, Depends(_principal)]
StaffUser = Annotated[Principal, Depends(_staff)]
MaybeUser = Annotated[Principal | None, Depends(optional_principal)]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=64,
        description='The version you read, as its ETag (`"3"`): 409 if it is no longer current.',
        json_schema_extra={"pattern": IF_MATCH_PATTERN},
    ),
]

# Path ids are UUIDs (36 characters); anything longer is refused before it reaches a query.
ResourceId = Annotated[Text, Path(min_length=1, max_length=36)]
