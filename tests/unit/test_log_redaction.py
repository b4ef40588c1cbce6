"""Logs: one JSON object per line with the standard fields, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from mercato.platform import logging as mlog

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    mlog.configure(level="DEBUG", fmt="json", stream=stream)
    try:
        yield stream
    finally:
        mlog.shutdown()
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    mlog.shutdown()  # the writer thread has written everything once stopped
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_is_json_with_timestamp_level_logger_message_and_bound_ids(
    captured: io.StringIO,
) -> None:
    structlog.contextvars.bind_contextvars(request_id="req-1", trace_id="ab" * 16)
    structlog.get_logger("mercato.access").info("request", route="/v1/orders/{order_id}")
    logging.getLogger("mercato.errors").warning("from the standard library")
    first, second = lines(captured)
    for line in (first, second):
        assert {"timestamp", "level", "logger", "message", "request_id", "trace_id"} <= set(line)
        assert line["request_id"] == "req-1"
    assert first["message"] == "request"
    assert first["logger"] == "mercato.access"
    assert first["route"] == "/v1/orders/{order_id}"
    assert second["level"] == "warning"
    assert second["message"] == "from the standard library"


def test_values_under_sensitive_keys_are_redacted_at_any_depth(captured: io.StringIO) -> None:
    structlog.get_logger("t").info(
        "login",
        password="hunter2-password",
        token=JWT,
        headers={"Authorization": "Bearer abc", "Accept": "application/json"},
        body={"card_number": "4242424242424242", "nested": [{"secret": "s3cr3t-value"}]},
    )
    text = json.dumps(lines(captured))
    for secret in ("hunter2-password", JWT, "Bearer abc", "4242424242424242", "s3cr3t-value"):
        assert secret not in text
    assert "application/json" in text  # harmless values stay


def test_secrets_inside_free_text_and_tracebacks_are_masked(captured: io.StringIO) -> None:
    log = logging.getLogger("mercato.errors")
    log.error("retry with password=hunter2-password and Authorization: Bearer %s", JWT)
    log.warning("card 4000 0000 0000 0002 declined; order 1234567890123 kept")
    try:
        raise RuntimeError(f"provider said token={JWT}")
    except RuntimeError:
        log.exception("provider failure")
    text = json.dumps(lines(captured))
    for secret in ("hunter2-password", JWT, "4000 0000 0000 0002"):
        assert secret not in text
    assert "1234567890123" in text  # not a card number (fails the Luhn check)
    assert "RuntimeError" in text


def test_the_console_format_is_for_people(captured: io.StringIO) -> None:
    stream = io.StringIO()
    mlog.configure(level="INFO", fmt="console", stream=stream)
    structlog.get_logger("mercato.access").info("request", status=200, password="hunter2")
    mlog.shutdown()
    text = stream.getvalue()
    assert "request" in text
    assert "status=200" in text
    assert "hunter2" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_every_access_line_is_written_once_and_in_order_while_the_writer_runs() -> None:
    """Requests queue access records while the writer thread takes and writes batches (every
    millisecond here, to meet it often): no line may be lost, doubled or reordered."""
    stream = io.StringIO()
    mlog.configure(level="INFO", fmt="json", stream=stream, write_interval=0.001)
    count = 20_000
    try:
        for n in range(count):
            mlog.access(logging.INFO, "GET", "/v1/orders/{id}", f"/v1/orders/{n}", 200, 1.5, {})
            if n % 1000 == 0:
                logging.getLogger("mercato.test").warning("checkpoint %d", n)
    finally:
        mlog.shutdown()
        structlog.reset_defaults()
    written = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [r for r in written if r["logger"] == "mercato.access"]
    assert [r["path"] for r in access] == [f"/v1/orders/{n}" for n in range(count)]
    assert sum(r["logger"] == "mercato.test" for r in written) == count // 1000


def test_the_access_line_masks_a_card_number_in_the_path(captured: io.StringIO) -> None:
    ids = {"request_id": "r-1", "trace_id": "ab" * 16}
    mlog.access(logging.INFO, "GET", "<unmatched>", "/v1/pay/4242424242424242", 404, 0.8, ids)
    mlog.access(logging.ERROR, "POST", "/v1/orders", "/v1/orders", 500, 12.25, {})
    first, second = lines(captured)
    assert first["path"] == "/v1/pay/[REDACTED]"
    assert first["request_id"] == "r-1"
    assert first["trace_id"] == "ab" * 16
    assert (first["level"], first["status"], first["duration_ms"]) == ("info", 404, 0.8)
    assert (second["level"], second["message"], second["method"]) == ("error", "request", "POST")
    assert "request_id" not in second
