"""Domain error base classes.

Every error a module raises subclasses one of these and carries a stable machine-readable
``code`` (a value of the module's ``ErrorCode`` str enum), a human message, the offending
``field`` where there is one, and any extra data a client needs. The HTTP layer maps the
*category* (the base class) to a status code, so domain code never speaks HTTP.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A business rule refused the request.

    ``retry_after`` (seconds) marks an error that means "not yet": the same request may succeed
    later without any change (a checkout still being paid for, a provider outage). Such an
    answer carries ``Retry-After`` and is never stored as an idempotent request's outcome.
    """

    retry_after: int | None = None

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        retry_after: int | None = None,
        **data: Any,
    ) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.field = field
        self.data = data
        if retry_after is not None:
            self.retry_after = retry_after


class InvalidValue(DomainError):
    """The input breaks a rule of the domain (HTTP 422)."""


class NotFound(DomainError):
    """The thing asked for does not exist or is not visible to the caller (HTTP 404)."""


class Conflict(DomainError):
    """The request conflicts with the current state (HTTP 409)."""


class PermissionDenied(DomainError):
    """The caller is known but may not do this (HTTP 403)."""


class AuthenticationFailed(DomainError):
    """The caller could not be identified (HTTP 401)."""


class PaymentRequired(DomainError):
    """The payment was declined (HTTP 402)."""


class Unavailable(DomainError):
    """A dependency is temporarily unavailable; retry later (HTTP 503)."""

    retry_after: int | None = 1


class TooManyRequests(DomainError):
    """Too many attempts in a while; retry after ``retry_after`` seconds (HTTP 429)."""

    retry_after: int | None = 1
