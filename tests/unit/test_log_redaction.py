"""Logs: one JSON object per line with the standard fields, and never a secret."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

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
    """Batches of access lines are queued while the writer thread takes and writes what is
    there (every millisecond here, to meet it often): no line may be lost, doubled or
    reordered, and other records keep their place between the batches."""
    stream = io.StringIO()
    mlog.configure(level="INFO", fmt="json", stream=stream, write_interval=0.001)
    count, batch = 20_000, 50
    try:
        for first in range(0, count, batch):
            mlog.access_lines(
                [
                    (
                        time.time_ns(),
                        logging.INFO,
                        "GET",
                        "/v1/orders/{id}",
                        f"/v1/orders/{n}",
                        200,
                        1.5,
                        {},
                    )
                    for n in range(first, first + batch)
                ]
            )
            if first % 1000 == 0:
                logging.getLogger("mercato.test").warning("checkpoint %d", first)
    finally:
        mlog.shutdown()
        structlog.reset_defaults()
    written = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [r for r in written if r["logger"] == "mercato.access"]
    assert [r["path"] for r in access] == [f"/v1/orders/{n}" for n in range(count)]
    checkpoints = [i for i, r in enumerate(written) if r["logger"] == "mercato.test"]
    assert checkpoints == [n + batch + n // 1000 for n in range(0, count, 1000)]  # after its batch


def test_access_lines_mask_card_numbers_and_follow_the_log_level(captured: io.StringIO) -> None:
    ids = {"request_id": "r-1", "trace_id": "ab" * 16}
    ended = time.time_ns()
    logging.getLogger().setLevel(logging.INFO)  # the fixture restores it
    mlog.access_lines(
        [
            (ended, logging.INFO, "GET", "<unmatched>", "/v1/pay/4242424242424242", 404, 0.8, ids),
            (ended, logging.ERROR, "POST", "/v1/orders", "/v1/orders", 500, 12.25, {}),
            (ended, logging.DEBUG, "GET", "/v1/orders", "/v1/orders", 200, 0.5, {}),  # below INFO
        ]
    )
    first, second = lines(captured)
    assert first["path"] == "/v1/pay/[REDACTED]"
    assert first["request_id"] == "r-1"
    assert first["trace_id"] == "ab" * 16
    assert (first["level"], first["status"], first["duration_ms"]) == ("info", 404, 0.8)
    assert first["timestamp"] == second["timestamp"]
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ended // 1000)
    assert first["timestamp"] == at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert (second["level"], second["message"], second["method"]) == ("error", "request", "POST")
    assert "request_id" not in second


# Paths as clients send them, rich in what makes or breaks a card number: runs of digits of
# about a card's length, grouped or not (a tenth of them pass the Luhn check), both separators,
# the path's own slashes, word characters, other punctuation and non-ASCII text.
SEGMENTS = st.one_of(
    st.text(alphabet=st.sampled_from("0123456789" * 3 + "4242 --//ab_.%~é٣"), max_size=16),
    st.from_regex(r"[0-9]{12,20}", fullmatch=True),
    st.from_regex(r"[0-9]{4}([ -][0-9]{4}){1,4}([ -][0-9]{1,3})?", fullmatch=True),
)
PATHS = st.lists(SEGMENTS, max_size=5).map("/".join)


@given(path=PATHS)
@settings(max_examples=800, deadline=None)
def test_paths_proven_card_free_without_the_pattern_are_card_free(path: str) -> None:
    assert mlog.mask_path(path) == mlog._CARD.sub(mlog._mask_card, path)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/products/4242424242424242",
        "/v1/products/4242-4242-4242-4242",
        "/v1/products/4242 4242 4242 4242",
        "4242424242424242",
        "/v1/x/4242424242424242/place",
        "/v1/x/a.4242424242424242",
        "/v1/x/é/4242424242424242",
        "/v1/x/4222222222222",  # thirteen digits
    ],
)
def test_a_card_number_in_a_path_is_masked(path: str) -> None:
    masked = mlog.mask_path(path)
    assert "4242" not in masked
    assert mlog.REDACTED in masked


@pytest.mark.parametrize(
    "path",
    [
        "/v1/products/019abf3c-4d2e-7a10-9b3c-5e6f7a8b9c0d",
        "/v1/products/b0000000-0000-7000-8000-000000004711",
        "/v1/orders/01935678-1234-7abc-8def-0123456789ab/place",
        "/v1/products/1234567890123",  # thirteen digits that fail the Luhn check
    ],
)
def test_ids_and_numbers_that_are_no_card_stay_as_they_are(path: str) -> None:
    assert mlog.mask_path(path) == path
