"""Identifiers: time-ordered UUIDs (version 7 layout), so ordering by id is ordering by creation."""

from __future__ import annotations

import os
import time
import uuid


def new_id() -> str:
    """A new UUIDv7 string: 48 bits of Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def is_id(value: str) -> bool:
    """Whether a string is a well-formed UUID (any version)."""
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return len(value) == 36
