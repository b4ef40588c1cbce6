"""Logging through structlog: JSON lines in production, readable console output in dev.

Every record, from structlog or the standard library, leaves as one line with ``timestamp``,
``level``, ``logger`` and ``message``, plus whatever is bound for the request being served
(``request_id``, ``trace_id``, ``span_id``; see :mod:`mercato.platform.instrumentation`).

Secrets never reach the output: values under sensitive keys (password, token, authorization,
card number, ...) are replaced, and bearer tokens, JWTs and card numbers are masked wherever
they appear in text, tracebacks included.

The event loop never waits for the terminal or a log pipe: records are formatted where they
are made (with the request's context) and a background thread writes the lines. The access log,
one line per request, is cheaper still: the instrumentation middleware hands over the requests
it answered in batches, and their lines are made in one pass (:func:`access_lines`).
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
from collections.abc import Callable, Iterable, Mapping, MutableMapping
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


def _path_class(char: str) -> int:
    """A path character's class for the quick proof in :func:`mask_path`."""
    if char in "0123456789":
        return ord("d")
    if char in "/-":
        return ord(char)
    return ord("w") if char.isascii() and (char.isalpha() or char == "_") else ord("?")


_PATH_CLASSES = bytes(_path_class(chr(c)) for c in range(256))
_THIRTEEN_DIGITS = "/" + "d" * 13

# The request and trace ids of the request being served, set once per request by the
# instrumentation middleware (one ContextVar: cheaper than binding each id separately).
request_context: ContextVar[dict[str, str] | None] = ContextVar(
    "mercato_request_context", default=None
)

_writer: _Writer | None = None
_render: Callable[[dict[str, Any]], str] = str  # an access-log event as one line (configure())
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


def mask_path(path: str) -> str:
    """A request path with any card number in it masked, as :func:`scrub` masks them.

    Most paths are proven card-free without the regular expression, which costs more than the
    rest of an access line: when a path has only ASCII letters, digits, ``_``, ``-`` and ``/``,
    a card number can only be a whole segment between slashes (the pattern needs a character
    that is neither a word character nor ``-`` on both sides, and here that is only ``/``), so
    the segment starts with thirteen digits or with ``dddd-dddd-dddd``, and at least with four
    digits. Without a segment like that, there is none. (``tests/unit/test_log_redaction.py``
    checks this against the pattern itself.)
    """
    if path.isascii():
        # str's substring search is several times faster than bytes' on lines this short
        classes = "/" + path.encode("ascii").translate(_PATH_CLASSES).decode("ascii")
        if "?" not in classes and (
            "/dddd" not in classes
            or (_THIRTEEN_DIGITS not in classes and "/dddd-dddd-dddd" not in classes)
        ):
            return path
    return _CARD.sub(_mask_card, path)


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


class _Writer(threading.Thread):
    """Writes the formatted lines to the stream once a second, off the event loop's thread.

    Lines are appended to a deque (atomic from any thread); the thread takes what is there and
    writes it with one system call, during which it does not hold the GIL. The thread does no
    formatting: every time it runs it needs the GIL, and formatting there made the event loop
    wait for it (measured on the product read: formatting in the thread +55 us CPU per request,
    a thread woken per line +40 %).
    """

    def __init__(self, stream: IO[str], *, interval: float = 1.0) -> None:
        super().__init__(name="mercato-log-writer", daemon=True)
        self.stream = stream
        self.interval = interval
        self.pending: deque[str] = deque()
        self._stopping = threading.Event()
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):  # e.g. io.StringIO in tests
            self._fd = None

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            self._drain()
        self._drain()

    def _drain(self) -> None:
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
    global _writer, _render
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_json)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, event_key="message")
    )
    formatter = _configure_structlog(renderer)
    shutdown()
    # orjson's bytes as str at once: its output buffers are larger than the small-object
    # allocator's, and keeping a batch of them alive until written cost 2 us per line
    _render = _json if fmt == "json" else lambda event: str(renderer(None, "", event))
    _writer = _Writer(stream or sys.stderr, interval=write_interval)
    _writer.start()
    handler = _QueueingHandler(_writer)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.logProcesses = logging.logMultiprocessing = False  # unused fields, cost per record
    for noisy in ("uvicorn.access", "aiosqlite"):  # aiosqlite logs every statement at DEBUG
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _configure_structlog(renderer: structlog.types.Processor) -> logging.Formatter:
    """Configure structlog; returns the formatter that renders stdlib records the same way."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        merge_request_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            redact,
            renderer,
        ],
    )


_LEVELS = {logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error"}


class _Second:
    """The last second an access line was stamped with, and its date and time formatted."""

    __slots__ = ("date_time", "second")

    def __init__(self) -> None:
        self.second = 0
        self.date_time = ""

    def stamp(self, now_ns: int) -> str:
        """``now_ns`` as an ISO UTC timestamp to the microsecond (formatted once a second)."""
        now_s, ns = divmod(now_ns, 1_000_000_000)
        if now_s != self.second:
            self.second = now_s
            self.date_time = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(now_s))
        return f"{self.date_time}{ns // 1000:06d}Z"


_last_second = _Second()


def access_lines(records: Iterable[AccessRecord]) -> None:
    """The access-log lines of a batch of answered requests, in their order.

    Every request logs one, so these skip the generic machinery (a stdlib record, the processor
    chain, the context) but carry the same fields, structlog's ISO UTC timestamps and the same
    redaction. :class:`mercato.platform.instrumentation.RequestJournal` hands them over in
    batches: one request at a time, a line cost the product read about three times as much (the
    code and data it touches fall out of the CPU's caches between requests). The records carry
    the request and trace ids, and the time the request ended as the line's timestamp. The path
    is the one field that can carry client text (tokens travel in headers and query strings,
    never logged): :func:`mask_path` checks it for card numbers.
    """
    writer = _writer
    if writer is None:  # logging not configured: structlog's defaults
        _structlog_access_lines(records)
        return
    enabled: dict[int, bool] = {}  # per level, asked once per batch
    stamp, render, lines = _last_second.stamp, _render, []
    for now_ns, level, method, route, path, status, duration_ms, ids in records:
        on = enabled.get(level)
        if on is None:
            on = enabled[level] = _access.isEnabledFor(level)
        if not on:
            continue
        event = {
            "timestamp": stamp(now_ns),
            "level": _LEVELS.get(level) or logging.getLevelName(level).lower(),
            "logger": "mercato.access",
            "message": "request",
            "method": method,
            "route": route,
            "path": mask_path(path),
            "status": status,
            "duration_ms": duration_ms,
        }
        if ids:
            event.update(ids)
        lines.append(render(event))
    writer.pending.extend(lines)


def _structlog_access_lines(records: Iterable[AccessRecord]) -> None:
    for _, level, method, route, path, status, duration_ms, ids in records:
        structlog.get_logger("mercato.access").log(
            level,
            "request",
            method=method,
            route=route,
            path=mask_path(path),
            status=status,
            duration_ms=duration_ms,
            **ids,
        )


def shutdown() -> None:
    """Write out every queued line and stop the writer thread."""
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None


atexit.register(shutdown)
