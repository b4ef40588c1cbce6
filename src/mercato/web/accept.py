"""Connections spread evenly over the worker processes of ``mercato serve --workers N``.

The workers share one listening socket. Left to the kernel and the event loop, the process that
wakes first accepts every connection waiting (uvloop, like asyncio, accepts until the queue is
empty), so connections that arrive together land on one worker: 16 keep-alive connections
opened at once split 11 to 5 between two workers, at times 16 to 0 (``bench/RESULTS.md``).
Keep-alive connections (a load balancer's pool, an ingress, long polls) stay where they landed,
so one process did twice the work of the other while their requests waited twice as long, and
the busier process set every latency percentile.

Each worker publishes how many connections it holds in a small array the supervisor shares with
its workers (:class:`ConnectionShares`). When a connection is waiting, a worker that holds more
than the least loaded of its siblings steps back: it stops watching the socket for
:data:`STEP_BACK_S` and leaves the connection to a sibling. If the connection still waits when
it looks again (the siblings are busy, starting or stopping), it accepts it, so stepping back
delays a connection by at most that long and never refuses one. A worker accepts one connection
per wake-up, so a burst is shared between the processes as it arrives. nginx balances its
workers the same way (a worker short of free connections skips accepting).

Connections that stay open are moved too: a worker holding at least two (and 2 %) more than a
sibling answers one request with ``Connection: close`` (at most one every
:data:`HAND_OVER_EVERY_S`), and the client's next connection goes to the sibling. So a
replacement for a worker that died takes its share of a load balancer's keep-alive pool instead
of idling beside a sibling that kept it.

A worker that is not accepting (starting, draining, dead) shows :data:`AWAY` in its slot, so no
sibling steps back or hands over for it.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import multiprocessing
import socket
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mercato.serve")

STEP_BACK_S = 0.002  # how long a worker holding more connections leaves a waiting one to others
HAND_OVER_EVERY_S = 0.1  # at most one open connection closed per worker this often, to move it
AWAY = 2**31 - 1  # the count of a worker that is not accepting: never the least loaded
# accept() failing for want of resources: asyncio's listener pauses a second and tries again
_SHORT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
RESOURCE_PAUSE_S = 1.0


class ConnectionShares:
    """How many connections each worker process holds, in memory shared by the supervisor with
    the workers it spawns (pass a :meth:`slot` in the worker's process arguments)."""

    def __init__(self, workers: int) -> None:
        self.counts: Any = multiprocessing.get_context("spawn").RawArray(ctypes.c_int32, workers)
        for index in range(workers):
            self.counts[index] = AWAY

    def slot(self, index: int) -> Slot:
        """Worker ``index``'s place in the array."""
        return Slot(self.counts, index)


class Slot:
    """One worker's count, and what it reads of its siblings'."""

    __slots__ = ("counts", "index")

    def __init__(self, counts: Any, index: int) -> None:
        self.counts = counts
        self.index = index

    def publish(self, held: int) -> None:
        """This worker holds ``held`` connections."""
        self.counts[self.index] = held

    def leave(self) -> None:
        """This worker accepts no more (it drains, or it is gone)."""
        self.counts[self.index] = AWAY

    def fewest_elsewhere(self) -> int:
        """The fewest connections a sibling that accepts holds (:data:`AWAY` when none does)."""
        mine, counts = self.index, self.counts
        return min((counts[i] for i in range(len(counts)) if i != mine), default=AWAY)


class BalancedListener:
    """Accepts connections on a socket shared with sibling processes (see the module doc).

    It stands in for the asyncio server uvicorn would have made for the socket: uvicorn's
    shutdown calls :meth:`close` and awaits :meth:`wait_closed`.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        slot: Slot,
        *,
        open_connections: Callable[[], int],
        backlog: int,
    ) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._factory = protocol_factory
        self._slot = slot
        self._open = open_connections
        self._backlog = backlog
        self._loop = asyncio.get_running_loop()
        self._starting = 0  # connections accepted whose protocol is not made yet
        self._tasks: set[asyncio.Task[None]] = set()  # setting up accepted connections
        self._watching = False
        self._closed = False
        self.stepped_back = 0  # how often a waiting connection was left to the siblings
        self.handed_over = 0  # open connections closed so that their clients reconnect to one
        self._next_hand_over = 0.0

    def start(self) -> BalancedListener:
        """Begin accepting."""
        self._sock.listen(self._backlog)  # a bound socket is handed over; listening is ours
        self._sock.setblocking(False)
        self.publish()
        self._watch()
        return self

    def held(self) -> int:
        """Connections this worker holds, counting those accepted and still being set up."""
        return self._open() + self._starting

    def publish(self) -> None:
        """Tell the siblings how many connections this worker holds (closed ones leave the
        count here: the server calls this on every tick)."""
        if not self._closed:
            self._slot.publish(self.held())

    def hand_over(self) -> bool:
        """Whether the connection whose response starts now should close after it, so that its
        client reconnects to a sibling holding at least two fewer (see the module doc)."""
        held = self.held()
        # two more, and 2 % more: thousands of long polls need not move for a few
        if self._closed or held < self._slot.fewest_elsewhere() + max(2, held // 50):
            return False
        now = self._loop.time()
        if now < self._next_hand_over:
            return False
        self._next_hand_over = now + HAND_OVER_EVERY_S
        self.handed_over += 1
        return True

    def _watch(self) -> None:
        if not self._watching and not self._closed:
            self._loop.add_reader(self._fd, self._ready)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_reader(self._fd)
            self._watching = False

    def _ready(self) -> None:
        held = self.held()
        self._slot.publish(held)
        if held > self._slot.fewest_elsewhere():
            self._unwatch()  # a sibling holds fewer: it may take this one
            self.stepped_back += 1
            self._loop.call_later(STEP_BACK_S, self._look_again)
            return
        self._accept()

    def _look_again(self) -> None:
        if self._closed:
            return
        self._watch()
        self._accept()  # whatever still waits was not taken in time: it is ours

    def _accept(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # a sibling took it, or the client gave up
        except OSError as error:
            if error.errno not in _SHORT_OF_RESOURCES:
                raise
            log.error("cannot accept connections (%s); trying again in a second", error)
            self._unwatch()
            self._loop.call_later(RESOURCE_PAUSE_S, self._watch)
            return
        conn.setblocking(False)
        self._starting += 1
        task = self._loop.create_task(self._serve(conn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._slot.publish(self.held())

    async def _serve(self, conn: socket.socket) -> None:
        made = False

        def protocol() -> asyncio.BaseProtocol:
            # from here the server counts the connection as open (uvicorn's connection set)
            nonlocal made
            made = True
            self._starting -= 1
            return self._factory()

        try:
            await self._loop.connect_accepted_socket(protocol, conn)
        except OSError:
            conn.close()  # gone before its transport was made
        finally:
            if not made:
                self._starting -= 1

    def close(self) -> None:
        """Stop accepting and close this process's copy of the socket."""
        if self._closed:
            return
        self._closed = True
        self._slot.leave()
        self._unwatch()
        self._sock.close()

    async def wait_closed(self) -> None:
        """Wait until the connections accepted before :meth:`close` have their transports."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
