"""Background workers: each a bounded loop with backoff, started and stopped by the lifespan.

A worker is any object with a ``name`` and an ``async run_once() -> int`` that does one bounded
batch of work and says how much it did. The runner calls it again at once while it finds work,
sleeps ``idle`` seconds (or until woken) when it finds none, and backs off exponentially (up to
``max_backoff``) after an error, which it logs and counts. Several processes may run the same
workers: each worker claims its items with ``FOR UPDATE SKIP LOCKED`` or a conditional update.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Protocol

from mercato.platform.db import DatabaseUnavailable

log = logging.getLogger("mercato.workers")


class Worker(Protocol):
    """One kind of background work."""

    name: str

    async def run_once(self) -> int: ...


class WorkerRunner:
    """Runs workers as asyncio tasks until stopped."""

    def __init__(
        self,
        workers: list[Worker],
        *,
        idle: float = 1.0,
        max_backoff: float = 30.0,
        on_run: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.workers = workers
        self.idle = idle
        self.max_backoff = max_backoff
        self._on_run = on_run
        self._stopping = asyncio.Event()
        self._wakeups: dict[str, asyncio.Event] = {w.name: asyncio.Event() for w in workers}
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self, name: str | None = None) -> None:
        """Cut a worker's idle sleep short (all workers when no name is given)."""
        for worker_name, event in self._wakeups.items():
            if name is None or name == worker_name:
                event.set()

    def start(self) -> None:
        """Start one task per worker."""
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._loop(w), name=f"worker:{w.name}") for w in self.workers
        ]

    async def stop(self, grace: float = 10.0) -> None:
        """Let each worker finish its current batch, then end its task."""
        self._stopping.set()
        self.wake()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._tasks = []

    async def _loop(self, worker: Worker) -> None:
        failures = 0
        wakeup = self._wakeups[worker.name]
        while not self._stopping.is_set():
            wakeup.clear()
            try:
                done = await worker.run_once()
                failures = 0
                self._record(worker.name, ok=True)
            except DatabaseUnavailable as exc:
                # an outage is logged once a try, without a traceback: /readyz already says it
                failures += 1
                self._record(worker.name, ok=False)
                log.warning("worker %s waits for the database (%d): %s", worker.name, failures, exc)
                done = 0
            except Exception:
                failures += 1
                self._record(worker.name, ok=False)
                log.exception("worker %s failed (%d in a row)", worker.name, failures)
                done = 0
            if done and not failures:
                continue
            delay = self.idle if not failures else min(self.max_backoff, 0.5 * 2**failures)
            sleep = delay * random.uniform(0.8, 1.2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=sleep)

    def _record(self, name: str, *, ok: bool) -> None:
        if self._on_run is not None:
            self._on_run(name, ok)
