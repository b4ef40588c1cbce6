"""Wake-ups for clients that follow changes: one hub per process, fed by the outbox.

Long polls and event streams *follow* an aggregate (one order) or a whole aggregate type (every
order) by registering a :class:`Subscriber` with the process's :class:`Notifier`. Waiting
requests hold no database connection and never poll: they sleep until the hub calls them.

**Where changes come from.** The outbox is the event log: every domain event is a row with an
increasing ``seq``, committed with the change it describes. The hub *tails* it: whenever it is
woken it runs one query for the rows it has not seen (``seq > top``, plus any open gaps, see
below) and hands each new row to the subscribers that follow it. One query serves every waiting
client of the process, so 10,000 held connections cost no more database work than one. It is
woken

* by the unit of work's after-commit hook, for changes committed by this process;
* on PostgreSQL, by ``LISTEN mercato_outbox`` on one dedicated connection per process
  (:mod:`mercato.platform.notify_postgres`); a trigger on the outbox sends the range of
  ``seq`` each inserting statement wrote (migration 0013; 0003 sent one notification per row),
  delivered when the inserting transaction commits. After the
  listening connection is lost and made again, the hub catches up with one pull;
* by a slow safety timer (a second on SQLite, where another process such as ``mercato worker``
  may write, and longer on PostgreSQL), one query per process, never per request.

The hub is *cold* (no listening connection, no queries) until someone follows something, and
goes cold again a while after the last follower has gone.

**Ordering.** Sequence order is not commit order: the hub hands rows out as
:mod:`mercato.platform.seq_tracker` explains (followers of one aggregate as soon as a row is
visible, followers of a whole type in ``seq`` order up to the *horizon*).

**Capacity and shutdown.** At most ``max_waiting`` followers are held at once (past that,
:class:`TooManyWaiting`, a 503 with Retry-After). :meth:`Notifier.shutdown` ends every follower
at once (streams with a reconnect event, long polls with an immediate answer) and refuses new
ones, so clients move to other replicas during a rolling deploy. Call it when draining starts
(on SIGTERM, before the drain delay); the application's lifespan also calls it on shutdown.

**Counters** for metrics: :attr:`Notifier.waiting` (long polls held) and :attr:`Notifier.streams`
(event streams open).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any, Protocol

import sqlalchemy as sa

from mercato.kernel.errors import Unavailable
from mercato.platform.db import Database, sql
from mercato.platform.error_codes import ErrorCode
from mercato.platform.event_log import COLUMNS, Change
from mercato.platform.open_files import allow_open_files
from mercato.platform.outbox import outbox
from mercato.platform.seq_tracker import SeqTracker

log = logging.getLogger("mercato.notify")

OUTBOX_CHANNEL = "mercato_outbox"  # the trigger of migration 0003 notifies on this channel


class Subscriber(Protocol):
    """A waiting client. The hub calls these from the event loop; they must not block."""

    def deliver(self, change: Change) -> None: ...

    def end(self) -> None:
        """The process is shutting down: answer or close now."""

    def beat(self) -> None:
        """Time for a heartbeat (called for streams only)."""


class TooManyWaiting(Unavailable):
    def __init__(self, limit: int) -> None:
        super().__init__(
            ErrorCode.TOO_MANY_WAITING,
            f"this server already holds {limit} waiting requests; retry shortly",
            retry_after=2,
        )


class ShuttingDown(Unavailable):
    def __init__(self) -> None:
        super().__init__(
            ErrorCode.SHUTTING_DOWN, "this server is shutting down; retry", retry_after=1
        )


class Listener(Protocol):
    """A source of cross-process wake-ups (LISTEN on PostgreSQL)."""

    connected: bool

    def start(self) -> None: ...

    async def stop(self) -> None: ...


_o = outbox.c
_bind = sa.bindparam
_AFTER = sql(
    sa.select(*COLUMNS).where(_o.seq > _bind("after")).order_by(_o.seq).limit(_bind("limit"))
)
_RANGE = sql(
    sa.select(*COLUMNS).where(_o.seq >= _bind("first"), _o.seq <= _bind("last")).order_by(_o.seq)
)
_RECENT = sql(
    sa.select(_o.seq, _o.occurred_at)
    .where(
        _o.seq
        > sa.select(sa.func.coalesce(sa.func.max(_o.seq), 0)).scalar_subquery() - _bind("window")
    )
    .order_by(_o.seq)
)

# -- the hub -----------------------------------------------------------------------------------


def _forget(table: dict[Any, set[Subscriber]], key: Any, subscriber: Subscriber) -> None:
    followers = table.get(key)
    if followers is not None:
        followers.discard(subscriber)
        if not followers:
            del table[key]


class Notifier:
    """The process's hub of followers. See the module docstring."""

    WINDOW = 1000  # on warming up, look this far back for transactions still in flight
    BATCH = 500

    def __init__(
        self,
        db: Database,
        *,
        max_waiting: int,
        gap_timeout_s: float = 5.0,
        heartbeat_s: float = 15.0,
        safety_poll_s: float = 1.0,
        linger_s: float = 60.0,
        listener: Listener | None = None,
    ) -> None:
        self.db = db
        self.max_waiting = max_waiting
        self.heartbeat_s = heartbeat_s
        self.safety_poll_s = safety_poll_s
        self.linger_s = linger_s
        self.listener = listener
        self.waiting = 0
        self.streams = 0
        self.shutting_down = False
        self.tracker = SeqTracker(gap_timeout=gap_timeout_s)
        self._by_aggregate: dict[tuple[str, str], set[Subscriber]] = {}
        self._by_type: dict[str, set[Subscriber]] = {}
        self._kinds: dict[Subscriber, bool] = {}  # follower -> is a stream
        self._beats: deque[tuple[float, Subscriber]] = deque()
        self._wakeup = asyncio.Event()
        self._beat_wakeup = asyncio.Event()
        self._warm = False
        self._warm_lock = asyncio.Lock()
        self._idle_since = 0.0
        self._late: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # -- following -------------------------------------------------------------------------

    @property
    def held(self) -> int:
        """Followers held now (long polls and streams)."""
        return len(self._kinds)

    async def follow(
        self,
        subscriber: Subscriber,
        *,
        aggregate_type: str,
        aggregate_id: str | None = None,
        stream: bool,
    ) -> int:
        """Register a follower of one aggregate (or of every aggregate of the type).

        Returns the horizon: every event up to it is in the outbox for the follower to read,
        and every later one will be delivered. Raises :class:`TooManyWaiting` at capacity and
        :class:`ShuttingDown` while draining. Always pair with :meth:`unfollow`.
        """
        if self.shutting_down:
            raise ShuttingDown()
        if len(self._kinds) >= self.max_waiting:
            raise TooManyWaiting(self.max_waiting)
        if aggregate_id is None:
            self._by_type.setdefault(aggregate_type, set()).add(subscriber)
        else:
            self._by_aggregate.setdefault((aggregate_type, aggregate_id), set()).add(subscriber)
        self._kinds[subscriber] = stream
        if stream:
            self.streams += 1
            self._beats.append((self._now() + self.heartbeat_s, subscriber))
            self._beat_wakeup.set()
        else:
            self.waiting += 1
        try:
            await self._ensure_warm()
        except BaseException:
            self.unfollow(subscriber, aggregate_type=aggregate_type, aggregate_id=aggregate_id)
            raise
        return self.tracker.horizon

    def unfollow(
        self, subscriber: Subscriber, *, aggregate_type: str, aggregate_id: str | None = None
    ) -> None:
        """Forget a follower (safe to call twice)."""
        stream = self._kinds.pop(subscriber, None)
        if stream is None:
            return
        if stream:
            self.streams -= 1
        else:
            self.waiting -= 1
        if aggregate_id is None:
            _forget(self._by_type, aggregate_type, subscriber)
        else:
            _forget(self._by_aggregate, (aggregate_type, aggregate_id), subscriber)
        if not self._kinds:
            self._idle_since = self._now()
            self._wakeup.set()  # let the tail loop time its cool-down from now

    # -- waking ------------------------------------------------------------------------------

    def wake(self, seqs: range | None = None) -> None:
        """Something was committed (``seqs``: the outbox rows, when known): look for news.

        ``seqs`` is the range one statement inserted; rows of other transactions may fall
        inside it (the sequence is shared): any row the hub still waits for wakes it, and rows
        it had given up on are read again on their own."""
        if not self._warm:
            return
        if seqs is not None and not self.tracker.wants_any(seqs):
            late = self.tracker.abandoned_in(seqs)
            if not late:
                return
            self._late.update(late)
        self._wakeup.set()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the tailing and heartbeat tasks (the hub stays cold until someone follows)."""
        if self._tasks:
            return
        allow_open_files(self.max_waiting + 1024)
        self.shutting_down = False
        self._tasks = [
            asyncio.create_task(self._tail(), name="notify:tail"),
            asyncio.create_task(self._heartbeats(), name="notify:heartbeats"),
        ]

    def shutdown(self) -> None:
        """Drain: end every follower now (streams ask clients to reconnect elsewhere, long polls
        answer at once) and refuse new ones. Idempotent; the HTTP server keeps running."""
        self.shutting_down = True
        for subscriber in list(self._kinds):
            self._call(subscriber.end)

    async def stop(self) -> None:
        """Shut down, stop the tasks and the listener."""
        self.shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._cool()

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _ensure_warm(self) -> None:
        if self._warm:
            return
        async with self._warm_lock:
            if self._warm:
                return
            async with self.db.connection() as conn:
                rows = await conn.fetch(_RECENT, window=self.WINDOW)
            now = time.time()
            visible = [(int(r["seq"]), now - r["occurred_at"].timestamp()) for r in rows]
            start = max(0, visible[-1][0] - self.WINDOW) if visible else 0
            self.tracker.reset(visible, window_start=start)
            self._late.clear()
            self._warm = True
            if self.listener is not None:
                self.listener.start()
            self._wakeup.set()

    async def _cool(self) -> None:
        async with self._warm_lock:  # a follower arriving meanwhile warms up again after
            self._warm = False
            if self.listener is not None:
                await self.listener.stop()

    def _sleep_for(self) -> float | None:
        if not self._warm:
            return None
        now = self._now()
        deadlines = [now + self.safety_poll_s]
        expiry = self.tracker.next_expiry()
        if expiry is not None:
            deadlines.append(expiry)
        if not self._kinds:
            deadlines.append(self._idle_since + self.linger_s)
        return max(0.0, min(deadlines) - now)

    async def _tail(self) -> None:
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sleep_for()):
                    await self._wakeup.wait()
            self._wakeup.clear()
            if not self._warm:
                continue
            if not self._kinds and self._now() >= self._idle_since + self.linger_s:
                await self._cool()
                continue
            try:
                more = await self._pull()
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("could not read the outbox (%s); retrying", type(exc).__name__)
                await asyncio.sleep(min(10.0, 0.2 * 2**failures))
                more = True
            if more:
                self._wakeup.set()

    async def _pull(self) -> bool:
        """Read what is new (and what filled a gap), hand it out; True if there may be more."""
        late, self._late = self._late, set()
        async with self.db.connection() as conn:
            rows = list(await conn.fetch(_AFTER, after=self.tracker.top, limit=self.BATCH))
            full = len(rows) == self.BATCH
            for first, last in self.tracker.gap_runs():
                rows.extend(await conn.fetch(_RANGE, first=first, last=last))
            for seq in late:
                rows.extend(await conn.fetch(_RANGE, first=seq, last=seq))
        changes = [Change.from_row(row) for row in rows]
        fresh, passed = self.tracker.absorb(changes, self._now())
        for change in (c for c in changes if c.seq in late):
            log.warning("outbox row %d committed after it was given up", change.seq)
            fresh.append(change)
        self._dispatch(fresh, passed)
        return full

    def _dispatch(self, fresh: list[Change], passed: list[Change]) -> None:
        for change in fresh:
            key = (change.aggregate_type, change.aggregate_id)
            for subscriber in list(self._by_aggregate.get(key, ())):
                self._call(subscriber.deliver, change)
        for change in passed:
            for subscriber in list(self._by_type.get(change.aggregate_type, ())):
                self._call(subscriber.deliver, change)

    @staticmethod
    def _call(method: Any, *args: Any) -> None:
        try:
            method(*args)
        except Exception:
            log.exception("a follower failed to take a notification")

    async def _heartbeats(self) -> None:
        """Beat every stream once per ``heartbeat_s``, a slice at a time.

        One task for every stream instead of a timer each; beats are spread over small ticks
        (a thousandth of the interval, at most ``per_tick`` streams each) so 10,000 streams
        opened in the same second do not all write at once and stall other requests.
        """
        tick = max(0.01, min(1.0, self.heartbeat_s / 1000))
        per_tick = 500
        while True:
            if not self._beats:
                self._beat_wakeup.clear()
                await self._beat_wakeup.wait()
            await asyncio.sleep(tick)
            now = self._now()
            for _ in range(per_tick):
                if not self._beats or self._beats[0][0] > now:
                    break
                _, subscriber = self._beats.popleft()
                if self._kinds.get(subscriber):
                    self._call(subscriber.beat)
                    self._beats.append((now + self.heartbeat_s, subscriber))
