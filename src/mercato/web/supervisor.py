"""``mercato serve --workers N``: the supervisor of N worker processes on one listening socket.

It binds the sockets, starts the workers (:func:`mercato.web.serve.serve` hands it the function
each runs), restarts any that dies while serving, forwards SIGTERM/SIGINT to them and exits 0
only when every worker did (see :mod:`mercato.web.serve` for the whole story). It also holds the
memory in which the workers tell each other how many connections each holds, so that they share
the connections evenly (:mod:`mercato.web.accept`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from mercato.web.accept import ConnectionShares, Slot

log = logging.getLogger("mercato.serve")

EXIT_FORCED = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_when_orphaned(supervisor_pid: int, limit_s: float, *, every_s: float = 0.5) -> None:
    """Stop this worker as on SIGTERM (drain, then exit) once its supervisor has died.

    If it is still running ``limit_s`` later (the signal came before the server installed its
    handlers, or draining hangs), it exits at once.
    """
    while os.getppid() == supervisor_pid:
        time.sleep(every_s)
    log.error("supervisor [%d] is gone; worker [%d] stops", supervisor_pid, os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(limit_s)
    os._exit(EXIT_FORCED)


def _forget_metrics_of(pid: int | None) -> None:
    """A dead worker's live gauges must stop counting (prometheus-client multiprocess mode)."""
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class Supervisor:
    """Runs N worker processes on one listening socket (see the module docstring)."""

    RESTARTS_PER_MINUTE = 10

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        target: Callable[[list[socket.socket], int, Slot], None],
        workers: int,
        drain_s: float,
        grace_s: float,
        also_listen: list[uvicorn.Config] | None = None,
    ) -> None:
        self.config = config
        self.target = target  # a worker process: target(sockets, supervisor_pid, slot)
        self.also_listen = also_listen or []
        self.workers = workers
        self.drain_s = drain_s
        self.grace_s = grace_s
        self.children: list[multiprocessing.process.BaseProcess] = []
        self._signals: list[int] = []
        self._wake = threading.Event()
        self._restarts: list[float] = []
        self._context = multiprocessing.get_context("spawn")
        self.shares = ConnectionShares(workers)  # how many connections each worker holds

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self._signals.append(sig)
        self._wake.set()

    def _spawn(
        self, sockets: list[socket.socket], index: int
    ) -> multiprocessing.process.BaseProcess:
        slot = self.shares.slot(index)
        slot.leave()  # until the new process accepts (a dead one's count must not hold others back)
        child = self._context.Process(
            target=self.target,
            args=(sockets, os.getpid(), slot),
            daemon=False,
        )
        child.start()
        return child

    def run(self) -> int:
        """Serve until a stop signal; the exit status."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)
        sockets = [config.bind_socket() for config in (self.config, *self.also_listen)]
        log.info("supervisor [%d] starting %d workers", os.getpid(), self.workers)
        self.children = [self._spawn(sockets, index) for index in range(self.workers)]
        status = self._supervise(sockets)
        if status is not None:
            self._stop_all(sockets, forced=True)
            return status
        return self._stop_all(sockets, forced=False)

    def _supervise(self, sockets: list[socket.socket]) -> int | None:
        """Keep the workers running until a signal (None) or a hopeless failure (a status)."""
        while not self._signals:
            self._wake.wait(0.2)
            self._wake.clear()
            for index, child in enumerate(self.children):
                if child.is_alive() or self._signals:
                    continue
                if child.exitcode == STARTUP_FAILURE:
                    log.error("worker [%s] failed to start; stopping", child.pid)
                    return STARTUP_FAILURE
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < 60] + [now]
                if len(self._restarts) > self.RESTARTS_PER_MINUTE:
                    log.error("workers keep dying; stopping")
                    return EXIT_FORCED
                log.error("worker [%s] died with %s; restarting", child.pid, child.exitcode)
                _forget_metrics_of(child.pid)
                self.children[index] = self._spawn(sockets, index)
        return None

    def _stop_all(self, sockets: list[socket.socket], *, forced: bool) -> int:
        for sock in sockets:
            sock.close()  # the workers keep their copies until each has drained
        self._forward(signal.SIGTERM)
        if forced:
            self._forward(signal.SIGTERM)
        forwarded = len(self._signals)
        deadline = time.monotonic() + self.drain_s + self.grace_s + 10
        while any(c.is_alive() for c in self.children) and time.monotonic() < deadline:
            if len(self._signals) > forwarded:  # a second signal: make the workers hurry
                forwarded = len(self._signals)
                forced = True
                self._forward(signal.SIGTERM)
            self._wake.wait(0.1)
            self._wake.clear()
        for child in self.children:
            if child.is_alive():
                log.error("worker [%s] did not stop in time; killing it", child.pid)
                child.kill()
                forced = True
            child.join()
        clean = all(c.exitcode == 0 for c in self.children)
        return 0 if clean and not forced else EXIT_FORCED

    def _forward(self, sig: int) -> None:
        for child in self.children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, sig)
