"""What an outbox notification's payload names: the trigger's ``first-last`` range, the lone
``seq`` of a database not yet migrated, or nothing (which still means "look for news")."""

from __future__ import annotations

import pytest

from mercato.platform.notify_postgres import inserted


@pytest.mark.parametrize(
    ("payload", "seqs"),
    [
        ("41-42", range(41, 43)),
        ("7-7", range(7, 8)),
        ("41", range(41, 42)),
        ("", None),
        ("x", None),
        ("41-", None),
        ("-42", None),
        ("42-41", None),
        ("4-2-9", None),
        ("1e3", None),
    ],
)
def test_a_payload_names_the_sequence_numbers_it_was_sent_for(
    payload: str, seqs: range | None
) -> None:
    assert inserted(payload) == seqs
