"""The one place the domain reads the time from, so tests can pin it."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC, to the microsecond."""
    return datetime.now(UTC)
