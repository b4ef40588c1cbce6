"""Logging through structlog: JSON lines in production, readable console output in dev.

Every record, from structlog or the standard library, leaves as one line with ``timestamp``,
``level``, ``logger`` and ``message``, plus whatever is bound for the request being served
(``request_id``, ``trace_id``, ``span_id``; see :mod:`mercato.platform.instrumentation`).

Secrets never reach the output: values under sensitive keys (password, token, authorization,
card number, ...) are replaced, and bearer tokens, JWTs and card numbers are masked wherever
they appear in text, tracebacks included.

The event loop never waits for the terminal or a log pipe: records are formatted where they
are made and written by a background thread (a ``QueueHandler`` and ``QueueListener``).
"""

from __future__ import annotations

import atexit
import logging
import queue
import re
import sys
from collections.abc import Mapping, MutableMapping
from logging.handlers import QueueHandler, QueueListener
from typing import IO, Any

import orjson
import structlog

REDACTED = "[REDACTED]"
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "new_password",
        "passwd",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "token_secret",
        "authorization",
        "cookie",
        "set-cookie",
        "api_key",
        "client_secret",
        "card_number",
        "card",
        "idempotency_key",
    }
)
_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (
        re.compile(r"(?i)\b(password|passwd|secret|token)(\"?\s*[=:]\s*\"?)[^\s\"',;&]+"),
        r"\1\2" + REDACTED,
    ),
)

_CARD = re.compile(r"\b(?:\d[ -]?){11,18}\d\b")

_listener: QueueListener | None = None


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return REDACTED if 12 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


def scrub(text: str) -> str:
    """Mask bearer tokens, JWTs, card numbers and ``password=...`` pairs in free text."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _CARD.sub(_mask_card, text)


def _redact_value(key: str, value: Any) -> Any:
    if key.lower() in SENSITIVE_KEYS:
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value("", v) for v in value]
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """structlog processor: the event with every secret masked."""
    return {key: _redact_value(key, value) for key, value in event_dict.items()}


def _json(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def configure(*, level: str = "INFO", fmt: str = "console", stream: IO[str] | None = None) -> None:
    """Route stdlib and structlog records through one formatter and a background writer."""
    global _listener
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, event_key="message")
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            redact,
            renderer,
        ],
    )
    shutdown()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = QueueHandler(records)  # formats in the caller's thread, with its contextvars
    handler.setFormatter(formatter)
    writer = logging.StreamHandler(stream or sys.stderr)
    _listener = QueueListener(records, writer)
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def shutdown() -> None:
    """Write out every queued record and stop the writer thread."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


atexit.register(shutdown)
