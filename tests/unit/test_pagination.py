"""Opaque cursors and cutting fetched rows into pages."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercato.kernel.errors import InvalidValue
from mercato.kernel.ids import is_id, new_id
from mercato.platform.pagination import Page, decode_cursor, encode_cursor, page_of


@dataclass(frozen=True)
class Row:
    id: str
    key: str = ""


def test_a_cursor_decodes_to_the_id_it_was_made_from() -> None:
    last_id = new_id()
    cursor = encode_cursor(last_id)
    assert decode_cursor(cursor) == last_id


def test_a_cursor_is_opaque_and_url_safe() -> None:
    last_id = new_id()
    cursor = encode_cursor(last_id)
    assert last_id not in cursor
    assert "=" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@given(st.uuids())
def test_every_uuid_survives_a_cursor_round_trip(value: object) -> None:
    text = str(value)
    assert decode_cursor(encode_cursor(text)) == text


@pytest.mark.parametrize("cursor", [None, ""])
def test_no_cursor_means_the_first_page(cursor: str | None) -> None:
    assert decode_cursor(cursor) is None


# A fixed id: parameters are part of the test ids, which every worker process must agree on.
AN_ID = "01a24687-dbf3-7d49-a9ec-f0b5b6f35c11"


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "a",
        "%%%",
        "é",
        "\x00",
        encode_cursor("not-an-id"),
        encode_cursor(AN_ID.replace("-", "")),  # a UUID, but not in canonical form
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8
        encode_cursor(AN_ID)[:-3],  # truncated
    ],
)
def test_a_cursor_not_made_by_encode_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        decode_cursor(cursor)
    assert exc.value.code == "invalid_cursor"
    assert exc.value.field == "cursor"


@given(st.text(min_size=1, max_size=60))
def test_decoding_arbitrary_text_gives_an_id_or_invalid_cursor(text: str) -> None:
    error: InvalidValue | None = None
    value: str | None = None
    try:
        value = decode_cursor(text)
    except InvalidValue as exc:
        error = exc
    if error is not None:
        assert error.code == "invalid_cursor"
    else:
        assert value is not None
        assert is_id(value)


def test_a_short_fetch_is_the_last_page() -> None:
    rows = [Row(new_id()) for _ in range(3)]
    assert page_of(rows, 3) == Page(rows, None)
    assert page_of(rows, 5) == Page(rows, None)
    assert page_of([], 5) == Page([], None)


def test_a_fetch_of_limit_plus_one_rows_gives_a_full_page_and_a_cursor_after_its_last_row() -> None:
    rows = [Row(new_id()) for _ in range(4)]
    page = page_of(rows, 3)
    assert page.items == rows[:3]
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor) == rows[2].id


def test_the_cursor_can_be_taken_from_another_attribute() -> None:
    rows = [Row("x", key=new_id()) for _ in range(3)]
    page = page_of(rows, 2, id_of="key")
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor) == rows[1].key
