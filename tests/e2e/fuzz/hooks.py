"""schemathesis hooks for the fuzzing in tests/e2e/test_openapi_fuzz.py.

A client sends a fresh ``Idempotency-Key`` with every new request (and the same one only to
retry it): fuzzed requests that happen to share a generated key would otherwise be refused as
a reuse of the key (422), which is the server keeping its promise, not a fault.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers or {}
    if "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = uuid.uuid4().hex
