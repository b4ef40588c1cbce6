"""Prometheus metrics: RED metrics per route template, business counters, gauges for long waits.

One :class:`Metrics` object per application (built by the composition root), each with its own
registry, so tests and several apps in one process never share counts.

Several worker processes (``mercato serve --workers N``) use prometheus-client's multiprocess
mode: ``mercato serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at an empty folder before the
workers start, every process writes its values to memory-mapped files there, and whichever
process answers ``GET /metrics`` adds them all up. Gauges say how: in-flight requests, waiting
long polls and open streams are summed over live processes; the outbox gauges take the most
recent value written. With one process the values stay in memory (cheaper) and the process
collector adds CPU, memory and file-descriptor metrics.

Long polls and streams are counted by the notifier (:meth:`Metrics.set_waiting`, sampled at
every flush). A long poll marks its request long-lived (``LONG_LIVED`` in the scope's state), so
its duration stays out of the latency histogram (a 30 s long poll is not a slow request);
Server-Sent Events responses are recognised by their content type.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.metrics import disable_created_metrics

from mercato.kernel.clock import utcnow
from mercato.platform.compat import observe_many
from mercato.platform.metric_families import MetricFamilies

log = logging.getLogger("mercato.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"
LONG_LIVED = "mercato.long_lived"

Refresher = Callable[[], Awaitable[None]]


def multiprocess_dir() -> str | None:
    """The folder shared by the worker processes, when running several."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics(MetricFamilies):
    """Every metric mercato exports, and how to render them."""

    def __init__(self, *, scrape_timeout_s: float = 2.0, flush_interval_s: float = 1.0) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they double the series count
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir()
        self.scrape_timeout_s = scrape_timeout_s
        self.flush_interval_s = flush_interval_s
        self._flusher: asyncio.Task[None] | None = None
        self._in_flight_now = 0
        self._counts: dict[tuple[str, str, int], int] = {}
        self._timings: dict[tuple[str, str], list[float]] = {}
        self._refreshers: list[Refresher] = []
        self._samplers: list[Callable[[], None]] = []
        self._settlers: list[Callable[[], None]] = []
        self._waiting = (0, 0)
        self._listener_connects = 0
        self.register(self.registry)
        if self.multiprocess_dir is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)

    # -- recording --------------------------------------------------------------------------

    def request_started(self) -> None:
        """A request came in (in-flight until :meth:`observe_request`)."""
        self._in_flight_now += 1

    def observe_request(
        self, method: str, route: str, status: int, seconds: float, *, timed: bool = True
    ) -> None:
        """Count one answered request and (unless long-lived) time it.

        This only adds to plain dicts; :meth:`flush` moves the sums into the
        Prometheus metrics once a second and before every scrape. Doing the metric updates in
        one batch (one memory-mapped write per series in multiprocess mode, not three per
        request) is what keeps the request path's overhead small (see bench/RESULTS.md).
        """
        self._in_flight_now -= 1
        key = (method, route, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        if timed:
            timings = self._timings.get(key[:2])
            if timings is None:
                self._timings[key[:2]] = [seconds]
            else:
                timings.append(seconds)

    def flush(self) -> None:
        """Move the requests counted since the last flush into the metrics."""
        for settle in self._settlers:
            settle()
        counts, self._counts = self._counts, {}
        timings, self._timings = self._timings, {}
        for (method, route, status), count in counts.items():
            self.requests.labels(method, route, str(status)).inc(count)
        for (method, route), values in timings.items():
            observe_many(self.duration.labels(method, route), values)
        self.in_flight.set(self._in_flight_now)
        for sample in self._samplers:
            sample()
        polls, streams = self._waiting
        self.waiting_long_polls.set(polls)
        self.open_streams.set(streams)

    def before_flush(self, settle: Callable[[], None]) -> None:
        """Call ``settle`` first at every flush: for requests that reach :meth:`observe_request`
        in batches (the instrumentation middleware's journal), so that a scrape counts every
        request this process has answered."""
        self._settlers.append(settle)

    def on_flush(self, sample: Callable[[], None]) -> None:
        """Call ``sample`` at every flush (each process, once a second): for cheap gauges."""
        self._samplers.append(sample)

    def set_pool(self, *, in_use: int, idle: int, size: int) -> None:
        """The database pool's connections now (in use, idle, the most it may open)."""
        for state, value in (("in_use", in_use), ("idle", idle), ("max", size)):
            self.pool_connections.labels(state).set(value)

    def set_listener(self, state: str, *, connects: int) -> None:
        """The LISTEN connection's state (connected, disconnected, idle) and its connects."""
        for each in ("connected", "disconnected", "idle"):
            self.listener_state.labels(each).set(int(each == state))
        self.listener_connects.inc(max(0, connects - self._listener_connects))
        self._listener_connects = max(connects, self._listener_connects)

    def set_waiting(self, *, long_polls: int, streams: int) -> None:
        """How many long polls wait and streams are open in this process (the notifier's
        counts, sampled at each flush)."""
        self._waiting = (long_polls, streams)

    def start(self) -> None:
        """Flush every ``flush_interval_s`` in the background (call inside the event loop)."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_periodically(), name="metrics-flush")

    async def stop(self) -> None:
        """Stop flushing in the background, after a last flush."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        self.flush()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            self.flush()

    def set_sandbox_override(self, active: bool) -> None:
        """Say whether production runs on test payments by explicit override."""
        self.sandbox_payments_override.set(1 if active else 0)

    def worker_run(self, worker: str, ok: bool) -> None:
        """WorkerRunner's ``on_run`` callback."""
        self.worker_runs.labels(worker, "ok" if ok else "failed").inc()

    def retried(self, attempt: int) -> None:
        """Transactor's ``on_retry`` hook."""
        self.transaction_retries.inc()

    def domain_error(self, code: str) -> None:
        """A business rule refused a request (called by the problem handler)."""
        self.domain_errors.labels(code).inc()

    def set_outbox_backlog(self, count: int, oldest: datetime | None) -> None:
        """Record the outbox backlog sampled at scrape time."""
        self.outbox_backlog.set(count)
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        self.outbox_oldest_age.set(max(age, 0.0))

    # -- rendering --------------------------------------------------------------------------

    def on_scrape(self, refresher: Refresher) -> None:
        """Run ``refresher`` (bounded by the scrape timeout) before each rendering."""
        self._refreshers.append(refresher)

    async def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, after the scrape-time refreshers."""
        for refresher in self._refreshers:
            try:
                await asyncio.wait_for(refresher(), timeout=self.scrape_timeout_s)
            except Exception as exc:  # a scrape must still answer when the database does not
                self.scrape_errors.inc()
                log.warning("metrics refresh failed: %s", type(exc).__name__)
        self.flush()
        body = await asyncio.to_thread(self._generate)
        return body, CONTENT_TYPE_LATEST

    def _generate(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        collected = CollectorRegistry()
        _multiprocess.MultiProcessCollector(collected, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(collected)

    def close(self) -> None:
        """Forget this process's live gauges (multiprocess mode), at a clean shutdown."""
        if self.multiprocess_dir is not None:
            _multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


def prepare_multiprocess_dir(path: str) -> None:
    """Make an empty folder for the worker processes' metric files (old files are stale)."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
