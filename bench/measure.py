"""What a placement costs beyond throughput: PostgreSQL's CPU and the round trips it takes.

* :class:`BackendCpu` sums the CPU time of the PostgreSQL backends serving one database, read
  from ``/proc`` while a load runs (the machine is shared: other databases' backends must not
  count, so the backends are found through ``pg_stat_activity`` by database name).
* :class:`CountingProxy` sits between a client and PostgreSQL and counts, per connection, the
  round trips (a burst of messages from the client answered by the server) and the statements
  (simple ``Query`` and extended-protocol ``Execute`` messages) that pass through it.
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


class BackendCpu:
    """CPU seconds of one database's backends between ``start()`` and ``stop()``.

    Backends seen at the start count from their value then; backends that appear later count
    whole (their connection set-up is part of the load). A sampler thread reads them every
    ``interval`` seconds, so a backend that exits counts up to its last sample.
    """

    def __init__(self, url: str, interval: float = 0.25) -> None:
        self._url = url
        self._interval = interval
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def start(self) -> BackendCpu:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(10)
        return sum(last - self._base.get(pid, 0.0) for pid, last in self._last.items())

    def _run(self) -> None:
        asyncio.run(self._sample())

    async def _sample(self) -> None:
        conn = await asyncpg.connect(self._url)
        try:
            first = True
            while True:
                pids = await conn.fetch(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                for row in pids:
                    value = _cpu(row["pid"])
                    if value is None:
                        continue
                    if first:
                        self._base[row["pid"]] = value
                    self._last[row["pid"]] = value
                if first:
                    first = False
                    self._ready.set()
                if self._stop.is_set():
                    return
                await asyncio.sleep(self._interval)
        finally:
            await conn.close()


_SSL_OR_GSS = {80877103, 80877104}  # SSLRequest, GSSENCRequest: answered 'N' by the proxy


@dataclass
class Counts:
    round_trips: int = 0
    statements: int = 0
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.round_trips, self.statements


class CountingProxy:
    """A TCP proxy to PostgreSQL that counts round trips and statements (a thread of its own)."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self.counts = Counts()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self.counts._lock:
            self.counts.connections += 1
        try:
            if not await self._startup(reader, writer):
                return
            up_reader, up_writer = await asyncio.open_connection(*self._target)
            up_writer.write(self._startup_message)
            # The server has "answered" once it sends anything after the client's last burst.
            state = {"answered": True}
            await asyncio.gather(
                self._pump_client(reader, up_writer, state),
                self._pump_server(up_reader, writer, state),
            )
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _startup(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            body = await reader.readexactly(length - 8)
            if code in _SSL_OR_GSS:
                writer.write(b"N")
                await writer.drain()
                continue
            self._startup_message = head + body
            return True

    async def _pump_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, bool]
    ) -> None:
        while True:
            kind = await reader.readexactly(1)
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            body = await reader.readexactly(length - 4)
            with self.counts._lock:
                if state["answered"]:
                    self.counts.round_trips += 1
                    state["answered"] = False
                if kind in (b"Q", b"E"):
                    self.counts.statements += 1
            writer.write(kind + struct.pack("!i", length) + body)
            if kind == b"X":
                writer.close()
                return
            await writer.drain()

    async def _pump_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, bool]
    ) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            state["answered"] = True
            writer.write(data)
            await writer.drain()
