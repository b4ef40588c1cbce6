"""The worker runner: busy until idle, woken early, backing off after errors, stopping cleanly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import anyio
import pytest

from mercato.platform import workers as workers_module
from mercato.platform.workers import WorkerRunner

pytestmark = pytest.mark.anyio


class QueueWorker:
    """Does one item per run; says how many it did."""

    def __init__(self, name: str = "queue", items: int = 0) -> None:
        self.name = name
        self.items = items
        self.runs = 0
        self.done = 0

    async def run_once(self) -> int:
        self.runs += 1
        if not self.items:
            return 0
        self.items -= 1
        self.done += 1
        return 1


class FlakyWorker:
    """Fails its first ``failures`` runs, then finds nothing to do."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs: list[float] = []

    async def run_once(self) -> int:
        self.runs.append(time.monotonic())
        if len(self.runs) <= self.failures:
            raise RuntimeError(f"failure {len(self.runs)}")
        return 0


class BlockingWorker:
    """Blocks inside its run until released."""

    name = "blocking"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.runs = 0
        self.finished = 0

    async def run_once(self) -> int:
        self.runs += 1
        self.started.set()
        await self.release.wait()
        self.finished += 1
        return 1


async def eventually(condition: Callable[[], bool], *, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"condition still false after {within} s")


async def test_a_worker_runs_back_to_back_until_it_finds_no_work_then_idles() -> None:
    worker = QueueWorker(items=25)
    runner = WorkerRunner([worker], idle=30)
    runner.start()
    try:
        await eventually(lambda: worker.runs == 26)
        assert worker.done == 25
        await asyncio.sleep(0.1)
        assert worker.runs == 26  # idle: no polling until the idle time passes
    finally:
        await runner.stop()


async def test_wake_cuts_the_idle_sleep_short_for_the_named_worker_only() -> None:
    woken, other = QueueWorker("woken"), QueueWorker("other")
    runner = WorkerRunner([woken, other], idle=30)
    runner.start()
    try:
        await eventually(lambda: woken.runs == 1 and other.runs == 1)
        woken.items = other.items = 3
        runner.wake("woken")
        await eventually(lambda: woken.done == 3)
        await asyncio.sleep(0.05)
        assert other.runs == 1
        runner.wake()
        await eventually(lambda: other.done == 3)
    finally:
        await runner.stop()


async def test_errors_back_off_exponentially_and_the_worker_keeps_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers_module.random, "uniform", lambda low, high: 0.04)
    worker = FlakyWorker(failures=3)
    outcomes: list[tuple[str, bool]] = []
    runner = WorkerRunner(
        [worker], idle=30, max_backoff=60, on_run=lambda name, ok: outcomes.append((name, ok))
    )
    runner.start()
    try:
        await eventually(lambda: len(worker.runs) == 4)
    finally:
        await runner.stop()
    assert outcomes == [("flaky", False)] * 3 + [("flaky", True)]
    # sleeps of 0.5 x 2**failures x jitter(0.04): 0.04, 0.08, 0.16 seconds
    gaps = [later - earlier for earlier, later in zip(worker.runs, worker.runs[1:], strict=False)]
    for gap, expected in zip(gaps, (0.04, 0.08, 0.16), strict=True):
        assert expected * 0.9 <= gap < expected + 0.1


async def test_backoff_is_capped_and_a_failing_worker_is_never_given_up() -> None:
    worker = FlakyWorker(failures=10**6)
    runner = WorkerRunner([worker], idle=30, max_backoff=0.01)
    runner.start()
    try:
        await eventually(lambda: len(worker.runs) >= 8)
    finally:
        await runner.stop()


async def test_stop_lets_the_current_run_finish_and_starts_no_other() -> None:
    worker = BlockingWorker()
    runner = WorkerRunner([worker], idle=30)
    runner.start()
    await eventually(worker.started.is_set)
    stopping = asyncio.create_task(runner.stop(grace=5))
    await asyncio.sleep(0.05)
    assert not stopping.done()
    worker.release.set()
    with anyio.fail_after(2):
        await stopping
    assert (worker.runs, worker.finished) == (1, 1)


async def test_stop_cancels_a_run_that_outlasts_the_grace_period() -> None:
    worker = BlockingWorker()
    runner = WorkerRunner([worker], idle=30)
    runner.start()
    await eventually(worker.started.is_set)
    with anyio.fail_after(2):
        await runner.stop(grace=0.05)
    assert (worker.runs, worker.finished) == (1, 0)
