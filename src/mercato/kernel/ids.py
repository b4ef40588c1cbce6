"""Identifiers: time-ordered UUIDs (version 7 layout), so ordering by id is ordering by creation."""

from __future__ import annotations

import os
import threading
import time
import uuid

_RAND_BITS = 74  # rand_a (12 bits) and rand_b (62 bits) of the UUIDv7 layout
_lock = threading.Lock()
_last = (0, 0)  # (millis, rand) of the previous id made by this process


def _next_stamp() -> tuple[int, int]:
    """Milliseconds and random bits, strictly increasing within the process.

    Ids made in the same millisecond (or after the clock stepped back) continue from the last
    one by a random increment (RFC 9562, section 6.2, method 2), so they still sort in order.
    """
    global _last
    with _lock:
        millis = time.time_ns() // 1_000_000
        last_millis, last_rand = _last
        if millis > last_millis:
            rand = int.from_bytes(os.urandom(10), "big") >> (80 - _RAND_BITS)
        else:
            millis = last_millis
            rand = last_rand + 1 + int.from_bytes(os.urandom(4), "big")
            if rand >> _RAND_BITS:
                millis, rand = millis + 1, 0
        _last = (millis, rand)
        return millis, rand


def new_id() -> str:
    """A new UUIDv7 string: 48 bits of Unix milliseconds, then random bits."""
    millis, rand = _next_stamp()
    rand_a, rand_b = rand >> 62, rand & ((1 << 62) - 1)
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | rand_a << 64 | rand_b
    value |= 0x7 << 76  # version 7
    value |= 0x2 << 62  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def is_id(value: str) -> bool:
    """Whether a string is a well-formed UUID (any version)."""
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return len(value) == 36
