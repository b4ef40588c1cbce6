"""``mercato serve``: HTTP the way an orchestrator expects it to start, drain and stop.

On the first SIGTERM (or SIGINT):

1. readiness fails at once and requests that wait (long polls, streams) end with a reconnect
   hint (:func:`mercato.platform.lifecycle.drain_process`);
2. the server keeps accepting and serving for ``shutdown_drain_s``: load balancers take a few
   seconds to drop a terminating pod, and whatever they still send here is served (each response
   with ``Connection: close``, so clients reconnect elsewhere);
3. the listener closes; requests in flight get up to ``shutdown_grace_s`` to finish;
4. the application stops: background workers finish their current item, the pool closes;
5. the process exits 0.

Once the application has started, each serving process tunes Python's garbage collector
(:class:`GcPolicy`): the objects that exist after start-up (modules, routes, the pool) are frozen
out of every later collection, and the young generation is collected less often. Under load the
default policy ran a full collection every second or so, 90-160 ms each, over the ~140,000
start-up objects: 12-18 % of a worker's CPU and the tail of every latency figure
(``bench/RESULTS.md``).

A second signal, or the grace deadline, forces the exit: what is still running is cut off and
the status is 1 (:data:`EXIT_FORCED`), so the log and the orchestrator both show it.

With ``--workers N`` a supervisor process binds the socket, starts N worker processes that run
the steps above, restarts any that dies while serving, forwards SIGTERM/SIGINT to them and exits
0 only when every worker did. It closes its own copy of the listening socket when it forwards
the first signal, so the port stops accepting exactly when the last worker closes its listener.
A worker whose supervisor is gone without stopping it (killed with SIGKILL, say) stops itself
the same way, instead of serving on alone on a port nobody supervises. The workers share the
API's connections evenly (:mod:`mercato.web.accept`).

With ``MERCATO_METRICS_PORT`` (staging and production) one more listening socket is bound for
metrics, next to the API's and handed to the same process or processes: a scrape is answered by
whichever process accepts it, with every process's metrics added up (multiprocess mode, see
:mod:`mercato.platform.metrics`), and it drains and closes with the API's listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from mercato.config import Settings
from mercato.platform import compat
from mercato.platform.lifecycle import drain_process
from mercato.web.accept import BalancedListener, Slot
from mercato.web.http_protocol import OneWriteHttpToolsProtocol
from mercato.web.supervisor import EXIT_FORCED, STOP_SIGNALS, Supervisor, stop_when_orphaned

log = logging.getLogger("mercato.serve")

APP = "mercato.web.app:create_app_from_env"
SETTLE_MAX_S = 5.0  # how long just-accepted connections may take to send their request


@dataclass(frozen=True)
class GcPolicy:
    """How a serving process runs Python's cyclic garbage collector once it has started.

    ``threshold`` is the number of new container objects between two young-generation
    collections (Python's default is 700). A request allocates a few hundred objects that
    refcounting frees when it ends, but with dozens of requests in flight a collection every
    700 allocations catches them alive and promotes them, and the promoted garbage triggers
    full collections. ``freeze`` moves everything alive after start-up into the permanent
    generation, so full collections no longer scan it. Only cyclic garbage waits longer to be
    freed; ordinary objects go when their last reference does, as before.
    """

    freeze: bool = True
    threshold: int = 50_000

    @classmethod
    def of(cls, settings: Settings) -> GcPolicy:
        return cls(freeze=settings.gc_freeze, threshold=settings.gc_threshold)

    def apply(self) -> None:
        """Tune this process's collector (call it once the application has started)."""
        if self.freeze:
            gc.collect()  # what start-up left behind goes now instead of being frozen with it
            gc.freeze()
        _, middle, old = gc.get_threshold()
        gc.set_threshold(self.threshold, middle, old)
        log.info(
            "garbage collector: threshold %d, %d start-up objects frozen",
            self.threshold,
            gc.get_freeze_count(),
        )


class GracefulServer(compat.Server):
    """A uvicorn server that drains before it stops listening, and says whether it was forced."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        drain_s: float,
        supervised: bool = False,
        gc_policy: GcPolicy | None = None,
        slot: Slot | None = None,
    ) -> None:
        super().__init__(config)
        self.drain_s = drain_s
        self.supervised = supervised
        self.slot = slot  # this worker's share of its supervisor's connections
        self.listener: BalancedListener | None = None
        self.gc_policy = gc_policy
        self.signals = 0
        self.forced = False
        self._drain_until: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)
        if self.forced:
            # Forced means now: without this, asyncio.run would cancel the lifespan and wait
            # for its graceful clean-up (closing the pool waits up to the database timeout).
            # After a grace-deadline cut uvicorn has already run that clean-up.
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_FORCED)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if self.slot is None or not sockets:
            await super().startup(sockets=sockets)
        else:
            # the API's socket is shared evenly with the sibling workers; the metrics port's
            # (if any) is served as uvicorn serves it: a scrape can go to any worker
            api, *others = sockets
            await super().startup(sockets=others)
            if not self.should_exit:
                self.listener = BalancedListener(
                    api,
                    self._protocol,
                    self.slot,
                    open_connections=lambda: len(self.server_state.connections),
                    backlog=self.config.backlog,
                ).start()
                self.servers.append(self.listener)  # type: ignore[arg-type]
        if self.gc_policy is not None and not self.should_exit:
            self.gc_policy.apply()

    def _protocol(self) -> asyncio.Protocol:
        """A connection's protocol, as uvicorn makes it for the sockets it listens on, told
        which listener accepted it (so it can hand connections over to a sibling worker)."""
        protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        if isinstance(protocol, OneWriteHttpToolsProtocol):
            protocol.balance = self.listener
        return protocol

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Runs as a signal handler. Never re-raised afterwards (uvicorn would, by recording it),
        # so a graceful stop exits 0 instead of dying of the signal.
        if self.supervised and sig == signal.SIGINT:
            return  # Ctrl-C reaches the whole process group; the supervisor forwards it once
        self.signals += 1
        if self.signals == 1:
            self._drain_until = time.monotonic() + self.drain_s
            if self._loop is not None:
                self._loop.call_soon_threadsafe(drain_process)
            log.warning(
                "signal %d: draining for %.1f s, then closing the listener", sig, self.drain_s
            )
        else:
            log.error("signal %d again: forcing exit", sig)
            self.forced = self.should_exit = self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self.should_exit = True
        if self.listener is not None:
            self.listener.publish()  # connections closed since the last accept
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop accepting, then give connections accepted just before a moment to send their
        # request: uvicorn's own shutdown closes a connection with no request yet at once, which
        # would drop a request that was already on its way.
        # The wait counts against the grace period, so a stop never takes longer than that.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        grace = self.config.timeout_graceful_shutdown or SETTLE_MAX_S
        started = time.monotonic()
        deadline = started + min(SETTLE_MAX_S, grace / 2)
        while time.monotonic() < deadline:
            if not compat.awaiting_request(self.server_state):
                break
            await asyncio.sleep(0.01)
        spent = time.monotonic() - started
        self.config.timeout_graceful_shutdown = max(1, round(grace - spent))
        await super().shutdown(sockets)

    def tasks_finished(self, *, cut_short: bool) -> None:
        # cut short: the grace deadline passed and uvicorn cancelled what was still running
        if cut_short or self.force_exit:
            self.forced = True

    @property
    def exit_code(self) -> int:
        """0 after a graceful stop, EXIT_FORCED when cut short, 3 when it never started."""
        if not self.started:
            return STARTUP_FAILURE
        return EXIT_FORCED if self.forced else 0


def server_config(settings: Settings, *, host: str, port: int, workers: int) -> uvicorn.Config:
    """The production server configuration for these settings."""
    return uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        lifespan="on",
        log_config=None,
        http=OneWriteHttpToolsProtocol,  # a response's head and body in one write
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        timeout_keep_alive=settings.keepalive_s,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
    )


def metrics_port_of(settings: Settings) -> int:
    """The port of a listener of its own for metrics; 0 when they are on the API port."""
    return settings.metrics_port if settings.metrics_enabled else 0


def serve(settings: Settings, *, host: str, port: int, workers: int) -> int:
    """Serve until stopped; the process exit status."""
    config = server_config(settings, host=host, port=port, workers=workers)
    metrics_port = metrics_port_of(settings)
    also_listen = (
        [server_config(settings, host=host, port=metrics_port, workers=workers)]
        if metrics_port
        else []
    )
    _ignore_late_signals()
    if workers == 1:
        server = GracefulServer(
            config, drain_s=settings.shutdown_drain_s, gc_policy=GcPolicy.of(settings)
        )
        if also_listen:
            server.run(sockets=[c.bind_socket() for c in (config, *also_listen)])
        else:
            server.run()
        return server.exit_code
    supervisor = Supervisor(
        config,
        # each worker process runs this with the sockets and the supervisor's pid
        target=functools.partial(
            _worker_main, config, settings.shutdown_drain_s, GcPolicy.of(settings)
        ),
        workers=workers,
        drain_s=settings.shutdown_drain_s,
        grace_s=settings.shutdown_grace_s,
        also_listen=also_listen,
    )
    return supervisor.run()


class MetricsServer(uvicorn.Server):
    """The metrics port of a process without the HTTP API (``mercato worker``): a task in that
    process's event loop, stopped by its owner (``should_exit``), which handles the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def metrics_server(settings: Settings, app: Any) -> MetricsServer | None:
    """A server for ``app`` on the metrics port of these settings, or None without one."""
    port = metrics_port_of(settings)
    if not port:
        return None
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
    )
    return MetricsServer(config)


def _ignore_late_signals() -> None:
    """uvicorn restores the handlers it found once it has stopped; a signal that arrives after
    that, while the process exits, must not turn a clean exit into death by signal."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: None)


def _worker_main(
    config: uvicorn.Config,
    drain_s: float,
    gc_policy: GcPolicy | None,
    sockets: list[socket.socket],
    supervisor_pid: int | None = None,
    slot: Slot | None = None,
) -> None:
    _ignore_late_signals()
    if supervisor_pid is not None:
        limit = drain_s + (config.timeout_graceful_shutdown or 0) + 10
        threading.Thread(
            target=stop_when_orphaned,
            args=(supervisor_pid, limit),
            name="orphan-watch",
            daemon=True,
        ).start()
    server = GracefulServer(
        config, drain_s=drain_s, supervised=True, gc_policy=gc_policy, slot=slot
    )
    server.run(sockets=sockets)
    sys.exit(server.exit_code)
