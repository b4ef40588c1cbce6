"""Which outbox sequence numbers a process has seen: the highest, the open gaps, the horizon.

**Ordering: sequence order is not commit order.** On PostgreSQL ``seq`` is taken from a sequence
when the row is inserted, but rows become visible when their transaction commits: a transaction
holding seq 41 may commit after another one holding seq 42. A reader that simply remembered "I
have seen up to 42" would never see 41. The notifier therefore tracks *gaps* (:class:`SeqTracker`):
numbers below the highest seen that were not visible yet. Each pull re-reads the open gaps; a gap
is filled when its row commits, or given up after ``gap_timeout`` (its transaction rolled back;
sequences never hand a number out twice, so an abandoned number stays a hole forever). The
*horizon* is the highest number below which nothing is open any more.

* Followers of **one aggregate** get a row as soon as it is visible. That is safe because every
  event of one aggregate is written by a transaction that holds the aggregate's row lock (the
  versioned ``UPDATE``), so an aggregate's rows commit in ``seq`` order and nothing of the same
  aggregate can still appear below a visible one.
* Followers of **a whole type** get rows in ``seq`` order and only up to the horizon, so a client
  that resumes "after event 42" can never have missed 41 for good. The price is that one slow or
  rolled-back transaction delays these streams by up to ``gap_timeout``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mercato.platform.event_log import Change

log = logging.getLogger("mercato.notify")


class SeqTracker:
    """The seen part of the outbox log: the highest seq, open gaps, and the complete horizon.

    Pure bookkeeping (no I/O, no clock of its own), so the ordering rules in the module
    docstring can be tested directly.
    """

    MAX_HELD = 100_000  # past this many rows waiting behind a gap, the oldest gap is given up

    def __init__(self, *, gap_timeout: float) -> None:
        self.gap_timeout = gap_timeout
        self.top = 0
        self.horizon = 0
        self._gaps: list[_Gap] = []  # runs of unseen numbers, oldest first
        self._held: dict[int, Change] = {}  # seen, above the horizon, not yet released
        self._abandoned: deque[int] = deque(maxlen=1024)

    def reset(self, visible: Sequence[tuple[int, float]], *, window_start: int) -> None:
        """Start from the log as it is: complete up to the first hole that may still fill.

        ``visible`` holds the rows after ``window_start`` as (seq, seconds since it was
        written). A row is written after every smaller number was handed out, so a hole below
        a row older than ``gap_timeout`` belongs to a transaction that has run longer than that:
        it is given up at once, like any gap that outlived the timeout. Otherwise the log is
        complete only below the hole; the rows above it are read again by the first pull.
        """
        expected = window_start + 1
        for seq, age in visible:
            if seq != expected:
                if age < self.gap_timeout:
                    break
                self._abandoned.extend(range(expected, min(seq, expected + 64)))
            expected = seq + 1
        self.top = self.horizon = expected - 1
        self._gaps.clear()
        self._held.clear()

    def wants(self, seq: int) -> bool:
        """Whether a row with this number would be news."""
        return seq > self.top or self._gap_of(seq) is not None

    def wants_any(self, seqs: range) -> bool:
        """Whether a row numbered anywhere in ``seqs`` would be news (what one notification
        names); as cheap for a statement that inserted a million rows as for one."""
        if not seqs:
            return False
        first, last = seqs[0], seqs[-1]
        return last > self.top or any(g.first <= last and first <= g.last for g in self._gaps)

    def abandoned_in(self, seqs: range) -> list[int]:
        """The numbers in ``seqs`` given up as never committed (they committed late after all)."""
        return [seq for seq in self._abandoned if seq in seqs]

    def gap_runs(self) -> list[tuple[int, int]]:
        """The open gaps as inclusive ranges, for re-reading."""
        return [(gap.first, gap.last) for gap in self._gaps]

    def next_expiry(self) -> float | None:
        """When the oldest open gap will be given up (None without gaps)."""
        if not self._gaps:
            return None
        return min(gap.noticed for gap in self._gaps) + self.gap_timeout

    def absorb(self, changes: Iterable[Change], now: float) -> tuple[list[Change], list[Change]]:
        """Take freshly read rows; returns (new ones in seq order, ones the horizon passed)."""
        fresh: list[Change] = []
        for change in sorted(changes, key=lambda c: c.seq):
            seq = change.seq
            if seq > self.top:
                if seq > self.top + 1:
                    self._gaps.append(_Gap(self.top + 1, seq - 1, now))
                self.top = seq
            elif not self._fill(seq):
                continue
            fresh.append(change)
            self._held[seq] = change
        return fresh, self.advance(now)

    def advance(self, now: float) -> list[Change]:
        """Give up expired gaps, move the horizon, and return the rows it passed, in order."""
        expired = [gap for gap in self._gaps if gap.noticed + self.gap_timeout <= now]
        if len(self._held) > self.MAX_HELD and self._gaps:
            expired.append(self._gaps[0])
        for gap in expired:
            if gap in self._gaps:
                self._give_up(gap)
        self.horizon = self._gaps[0].first - 1 if self._gaps else self.top
        passed = sorted(seq for seq in self._held if seq <= self.horizon)
        return [self._held.pop(seq) for seq in passed]

    def _give_up(self, gap: _Gap) -> None:
        first, last = gap.first, gap.last
        log.warning(
            "outbox rows %d..%d were not committed within %.1f s; streams go on without them",
            first,
            last,
            self.gap_timeout,
        )
        self._abandoned.extend(range(first, min(last, first + 64) + 1))
        self._gaps.remove(gap)

    def _gap_of(self, seq: int) -> _Gap | None:
        for gap in self._gaps:
            if gap.first <= seq <= gap.last:
                return gap
        return None

    def _fill(self, seq: int) -> bool:
        gap = self._gap_of(seq)
        if gap is None:
            return False
        index = self._gaps.index(gap)
        pieces = [_Gap(gap.first, seq - 1, gap.noticed), _Gap(seq + 1, gap.last, gap.noticed)]
        self._gaps[index : index + 1] = [p for p in pieces if p.first <= p.last]
        return True


@dataclass(frozen=True, slots=True)
class _Gap:
    """A run of numbers below the top not seen yet, and when it was noticed."""

    first: int
    last: int
    noticed: float
