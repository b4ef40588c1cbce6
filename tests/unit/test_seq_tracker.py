"""The outbox tail's bookkeeping: sequence order is not commit order, and nothing is skipped."""

from __future__ import annotations

from mercato.platform.event_log import Change
from mercato.platform.seq_tracker import SeqTracker


def change(seq: int, aggregate_id: str = "a") -> Change:
    return Change(seq, "order", aggregate_id, "OrderConfirmed", {"version": seq}, b"{}")


def seqs(changes: list[Change]) -> list[int]:
    return [c.seq for c in changes]


def test_rows_that_arrive_in_order_are_new_and_passed_at_once() -> None:
    tracker = SeqTracker(gap_timeout=5)

    fresh, passed = tracker.absorb([change(1), change(2), change(3)], now=0)

    assert seqs(fresh) == [1, 2, 3]
    assert seqs(passed) == [1, 2, 3]
    assert (tracker.top, tracker.horizon) == (3, 3)


def test_a_row_seen_again_is_not_news() -> None:
    tracker = SeqTracker(gap_timeout=5)
    tracker.absorb([change(1), change(2)], now=0)

    fresh, passed = tracker.absorb([change(2)], now=1)

    assert (fresh, passed) == ([], [])
    assert not tracker.wants(2)
    assert tracker.wants(3)


def test_a_row_committed_after_a_later_one_holds_the_horizon_back_until_it_arrives() -> None:
    tracker = SeqTracker(gap_timeout=5)
    tracker.absorb([change(1)], now=0)

    fresh, passed = tracker.absorb([change(3, "b"), change(4, "c")], now=1)

    # 3 and 4 are visible (followers of their own orders may have them) but the all-orders
    # view must not move past 2, which a transaction still holds.
    assert seqs(fresh) == [3, 4]
    assert passed == []
    assert tracker.horizon == 1
    assert tracker.gap_runs() == [(2, 2)]
    assert tracker.wants(2)

    fresh, passed = tracker.absorb([change(2, "d")], now=2)

    assert seqs(fresh) == [2]
    assert seqs(passed) == [2, 3, 4]
    assert (tracker.horizon, tracker.gap_runs()) == (4, [])


def test_a_gap_filled_in_the_middle_splits_and_the_horizon_moves_to_the_first_hole() -> None:
    tracker = SeqTracker(gap_timeout=5)
    tracker.absorb([change(1), change(6)], now=0)
    assert tracker.gap_runs() == [(2, 5)]

    _, passed = tracker.absorb([change(4)], now=1)
    assert passed == []
    assert tracker.gap_runs() == [(2, 3), (5, 5)]

    _, passed = tracker.absorb([change(2), change(3)], now=1)
    assert seqs(passed) == [2, 3, 4]
    assert (tracker.horizon, tracker.gap_runs()) == (4, [(5, 5)])


def test_a_gap_is_given_up_after_the_timeout_and_what_waited_behind_it_is_passed() -> None:
    tracker = SeqTracker(gap_timeout=5)
    tracker.absorb([change(1), change(3)], now=10)
    assert tracker.next_expiry() == 15

    assert tracker.advance(now=14.9) == []
    passed = tracker.advance(now=15)

    assert seqs(passed) == [3]
    assert (tracker.horizon, tracker.next_expiry()) == (3, None)
    assert tracker.abandoned_in(range(1, 4)) == [2]
    assert not tracker.wants(2)  # a late commit is not picked up by the normal pull


def test_starting_from_the_log_stops_before_the_first_hole_that_may_still_fill() -> None:
    tracker = SeqTracker(gap_timeout=5)

    # 10 is missing and 11 was written a second ago: 10's transaction may still commit
    tracker.reset([(8, 60), (9, 60), (11, 1), (12, 0.5)], window_start=7)
    assert (tracker.top, tracker.horizon) == (9, 9)

    tracker.reset([], window_start=0)
    assert (tracker.top, tracker.horizon) == (0, 0)

    tracker.reset([(5, 1), (6, 1)], window_start=3)  # 4 is missing, just before 5
    assert tracker.horizon == 3


def test_starting_from_the_log_gives_up_holes_older_than_the_timeout() -> None:
    tracker = SeqTracker(gap_timeout=5)

    # 10 is missing below a row written a minute ago: rolled back long since
    tracker.reset([(8, 90), (9, 90), (11, 60), (12, 2)], window_start=7)

    assert (tracker.top, tracker.horizon) == (12, 12)
    assert tracker.abandoned_in(range(10, 11)) == [10]


def test_too_much_held_behind_a_gap_gives_the_gap_up() -> None:
    tracker = SeqTracker(gap_timeout=60)
    tracker.MAX_HELD = 3
    tracker.absorb([change(1)], now=0)

    _, passed = tracker.absorb([change(3), change(4), change(5), change(6)], now=0)

    assert seqs(passed) == [3, 4, 5, 6]
    assert tracker.horizon == 6


def test_a_notified_range_is_news_if_any_of_it_is_above_the_top_or_in_a_gap() -> None:
    tracker = SeqTracker(gap_timeout=5)
    tracker.absorb([change(1), change(2), change(5), change(6)], now=0)  # 3 and 4 open

    assert tracker.wants_any(range(6, 8))  # 7 is above the top
    assert tracker.wants_any(range(2, 4))  # 3 is in the gap
    assert not tracker.wants_any(range(5, 7))  # seen already
    assert not tracker.wants_any(range(1, 1))  # names nothing
    assert tracker.wants_any(range(1, 1_000_001))  # a million-row statement, checked at once


def test_the_given_up_numbers_a_range_covers_are_read_again_on_their_own() -> None:
    tracker = SeqTracker(gap_timeout=5)
    tracker.absorb([change(1), change(4)], now=0)
    tracker.advance(now=5)  # 2 and 3 given up

    assert not tracker.wants_any(range(2, 5))  # the normal pull would not look again
    assert tracker.abandoned_in(range(3, 5)) == [3]
    assert tracker.abandoned_in(range(2, 4)) == [2, 3]
    assert tracker.abandoned_in(range(5, 9)) == []
