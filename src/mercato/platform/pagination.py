"""Cursor pagination: opaque cursors over time-ordered ids, bounded page sizes."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Generic, TypeVar

from mercato.kernel.errors import InvalidValue
from mercato.kernel.ids import is_id
from mercato.platform.error_codes import ErrorCode

T = TypeVar("T")

MAX_PAGE = 100
DEFAULT_PAGE = 20


def encode_cursor(last_id: str) -> str:
    """An opaque cursor that continues after ``last_id``."""
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The id a cursor continues after; InvalidValue for anything not made by encode_cursor."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeError):
        value = ""
    if not is_id(value):
        raise InvalidValue(ErrorCode.INVALID_CURSOR, "the cursor is not valid", field="cursor")
    return value


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of items and the cursor of the next page (None on the last)."""

    items: list[T]
    next_cursor: str | None


def page_of(items: list[T], limit: int, id_of: str = "id") -> Page[T]:
    """Cut a list fetched with ``limit + 1`` rows into a page and its next cursor."""
    if len(items) > limit:
        items = items[:limit]
        return Page(items, encode_cursor(str(getattr(items[-1], id_of))))
    return Page(items, None)
