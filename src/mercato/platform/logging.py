"""Logging through structlog: JSON lines in production, readable console output in dev.

Every record, from structlog or the standard library, leaves as one line with ``timestamp``,
``level``, ``logger`` and ``message``, plus whatever is bound for the request being served
(``request_id``, ``trace_id``, ``span_id``; see :mod:`mercato.platform.instrumentation`).

Secrets never reach the output: values under sensitive keys (password, token, authorization,
card number, ...) are replaced, and bearer tokens, JWTs and card numbers are masked wherever
they appear in text, tracebacks included.

The event loop never waits for the terminal or a log pipe: records are formatted where they
are made (with the request's context) and a background thread writes the lines. The access log,
one line per request, is cheaper still: each request queues a tuple of its fields and the lines
are made in batches (:func:`access`).
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, MutableMapping
from contextvars import ContextVar
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
_WORD_PATTERNS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (
        re.compile(r"(?i)\b(password|passwd|secret|token)(\"?\s*[=:]\s*\"?)[^\s\"',;&]+"),
        r"\1\2" + REDACTED,
    ),
)
_TRIGGERS = ("bearer", "basic", "eyj", "passw", "secret", "token")
# A card number: 13-19 digits in a row, or groups of four separated by spaces or dashes.
# Not inside a longer token: the dashed groups of a UUID are not a card number.
_CARD = re.compile(r"(?<![\w-])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?)(?![\w-])")
_DIGITS = re.compile(r"\d{4}")

# The request and trace ids of the request being served, set once per request by the
# instrumentation middleware (one ContextVar: cheaper than binding each id separately).
request_context: ContextVar[dict[str, str] | None] = ContextVar(
    "mercato_request_context", default=None
)

_writer: _Writer | None = None
_access = logging.getLogger("mercato.access")


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = match.group(0).replace(" ", "").replace("-", "")
    return REDACTED if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


def scrub(text: str) -> str:
    """Mask bearer tokens, JWTs, card numbers and ``password=...`` pairs in free text."""
    lowered = text.lower()
    if any(word in lowered for word in _TRIGGERS):  # cheap test first: most text has none
        for pattern, replacement in _WORD_PATTERNS:
            text = pattern.sub(replacement, text)
    if len(text) >= 13 and _DIGITS.search(text):
        text = _CARD.sub(_mask_card, text)
    return text


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


def merge_request_context(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add the ids of the request being served."""
    for key, value in (request_context.get() or {}).items():
        event_dict.setdefault(key, value)
    return event_dict


def _json(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


# One request's access-log fields: (time_ns, level, method, route, path, status, duration_ms, ids)
AccessRecord = tuple[int, int, str, str, str, int, float, Mapping[str, str]]
ACCESS_BATCH = 64  # access records turned into lines at once, on the thread that fills the batch


class _Writer(threading.Thread):
    """Writes the formatted lines to the stream once a second, off the event loop's thread.

    Lines are appended to a deque (atomic from any thread); the thread takes what is there and
    writes it with one system call, during which it does not hold the GIL. The thread does as
    little Python as possible: every time it runs it needs the GIL, and formatting every line
    there made the event loop wait for it (measured on the product read: formatting in the
    thread +55 us CPU per request, a thread woken per line +40 %). It only formats the access
    records still waiting when it wakes, the tail of a batch that a quiet server never fills.
    """

    def __init__(
        self,
        stream: IO[str],
        render: Callable[[dict[str, Any]], str],
        *,
        interval: float = 1.0,
    ) -> None:
        super().__init__(name="mercato-log-writer", daemon=True)
        self.stream = stream
        self.render = render
        self.interval = interval
        self.pending: deque[str] = deque()
        self.access: deque[AccessRecord] = deque()
        self._formatting = threading.Lock()
        self._stopping = threading.Event()
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):  # e.g. io.StringIO in tests
            self._fd = None

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            self._drain()
        self._drain()

    def format_access(self, *, wait: bool = True) -> None:
        """Turn the queued access records into lines, in order, after those already pending.

        The event loop calls it without waiting: if the writer thread is formatting just then,
        the records stay queued for the next batch.
        """
        if not self._formatting.acquire(blocking=wait):
            return
        try:
            records, render, popleft = self.access, self.render, self.access.popleft
            self.pending.extend([render(_access_event(popleft())) for _ in range(len(records))])
        finally:
            self._formatting.release()

    def _drain(self) -> None:
        self.format_access()
        pending = self.pending
        batch = [pending.popleft() for _ in range(len(pending))]
        if batch:
            self._write("\n".join(batch) + "\n")

    def _write(self, text: str) -> None:
        try:
            if self._fd is None:
                self.stream.write(text)
                self.stream.flush()
                return
            self.stream.flush()  # anything written to the stream directly goes first
            data = text.encode("utf-8", "replace")
            while data:
                data = data[os.write(self._fd, data) :]
        except (OSError, ValueError):  # a closed stream: nothing else to do with logs
            pass

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)


class _QueueingHandler(logging.Handler):
    """Formats a record in the caller's thread (with its context) and queues the line."""

    def __init__(self, writer: _Writer) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.pending.append(self.format(record))
        except Exception:
            self.handleError(record)


def configure(
    *,
    level: str = "INFO",
    fmt: str = "console",
    stream: IO[str] | None = None,
    write_interval: float = 1.0,
) -> None:
    """Route stdlib and structlog records through one formatter and a background writer
    that writes what was logged every ``write_interval`` seconds."""
    global _writer
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        merge_request_context,
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
    render = _json if fmt == "json" else lambda event: str(renderer(None, "", event))
    _writer = _Writer(stream or sys.stderr, render, interval=write_interval)
    _writer.start()
    handler = _QueueingHandler(_writer)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.logProcesses = logging.logMultiprocessing = False  # unused fields, cost per record
    for noisy in ("uvicorn.access", "aiosqlite"):  # aiosqlite logs every statement at DEBUG
        logging.getLogger(noisy).setLevel(logging.WARNING)


_LEVELS = {logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error"}
_second: list[Any] = [0, ""]  # the current second and its formatted prefix


def _timestamp(now_ns: int) -> str:
    """Like structlog's ISO UTC timestamps, formatting the date part once per second."""
    second, ns = divmod(now_ns, 1_000_000_000)
    if second != _second[0]:
        _second[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))]
    return f"{_second[1]}{ns // 1000:06d}Z"


def access(
    level: int,
    method: str,
    route: str,
    path: str,
    status: int,
    duration_ms: float,
    ids: Mapping[str, str],
) -> None:
    """The access-log line of one request: the same fields and redaction, on a fast path.

    Every request logs this line, so it skips the generic machinery (a stdlib record, the
    processor chain, reading the context) and is not even formatted here: the request queues a
    tuple of its fields, and every :data:`ACCESS_BATCH` requests the whole batch becomes lines
    in one pass (the writer thread formats a smaller rest once a second). Formatting each line
    where the request ended cost the served product read about three times what it costs in a
    tight loop: per request the code and data it touches are no longer in the CPU's caches.
    Lines therefore reach the log up to a batch after other records made at the same time;
    their timestamps are when the request ended.

    The caller passes the request and trace ids; the fields are mercato's own except the path,
    the one that can carry client text (tokens travel in headers and query strings, which are
    never logged), so it is checked for card numbers when the line is made.
    """
    writer = _writer
    if writer is None:  # logging not configured: structlog's defaults
        structlog.get_logger("mercato.access").log(
            level,
            "request",
            method=method,
            route=route,
            path=path,
            status=status,
            duration_ms=duration_ms,
            **ids,
        )
        return
    if not _access.isEnabledFor(level):
        return
    queued = writer.access
    queued.append((time.time_ns(), level, method, route, path, status, duration_ms, ids))
    if len(queued) >= ACCESS_BATCH:
        writer.format_access(wait=False)


def _access_event(record: AccessRecord) -> dict[str, Any]:
    now_ns, level, method, route, path, status, duration_ms, ids = record
    event = {
        "timestamp": _timestamp(now_ns),
        "level": _LEVELS.get(level) or logging.getLevelName(level).lower(),
        "logger": "mercato.access",
        "message": "request",
        "method": method,
        "route": route,
        "path": _CARD.sub(_mask_card, path),
        "status": status,
        "duration_ms": duration_ms,
    }
    if ids:
        event.update(ids)
    return event


def shutdown() -> None:
    """Write out every queued line and stop the writer thread."""
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None


atexit.register(shutdown)
