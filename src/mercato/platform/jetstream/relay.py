"""The worker that publishes outbox events to JetStream: at least once, in order per aggregate.

Each run claims a batch of rows (oldest first, see :mod:`.claims`) and publishes it in waves:
the first unpublished event of every aggregate in the batch, all at once with the asynchronous
publish API (``in_flight`` acknowledgements outstanding at most), then the second event of each
aggregate whose first was acknowledged, and so on. So no two events of one aggregate are ever in
flight together, and a failed publish stops its aggregate's later events until the next batch:
a failure can delay an aggregate, never reorder it. Each message carries ``Nats-Msg-Id`` (the
envelope's id), so JetStream drops the repeat of an event it stored but whose acknowledgement
was lost. Rows are marked published after JetStream's acknowledgement only, all acknowledged
rows of a batch with one statement; the rest are released for the next batch.

While NATS is unreachable (or acknowledges nothing) the relay backs off on its own, up to
``max_backoff_s``, logging one warning per try and touching neither NATS nor the database in
between, however often commits wake it; the outbox keeps every event meanwhile and checkout
never waits for NATS.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence

from nats.errors import ConnectionClosedError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import PubAck

from mercato.platform.db import Database
from mercato.platform.jetstream import claims
from mercato.platform.jetstream.envelope import encode, event_id, subject
from mercato.platform.jetstream.metrics import RelayMetrics
from mercato.platform.jetstream.stream import Link
from mercato.platform.outbox import OutboxEvent

log = logging.getLogger("mercato.events.nats")


class BrokerUnavailable(Exception):
    """NATS could not be reached or acknowledged nothing: the batch waits in the outbox."""


class NatsRelay:
    """Moves outbox rows to JetStream. See the module docstring."""

    name = "nats-relay"

    def __init__(
        self,
        db: Database,
        link: Link,
        metrics: RelayMetrics,
        *,
        batch: int = 1000,
        lease_s: float = 30.0,
        postgres: bool = False,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.max_backoff_s = max_backoff_s
        self._failures = 0
        self._retry_at = 0.0
        self._prefetched: claims.Batch | None = None
        self.db = db
        self.link = link
        self.metrics = metrics
        self.batch = batch
        self.lease_s = lease_s
        self.postgres = postgres

    async def run_once(self) -> int:
        """One batch, or nothing while backing off from an unreachable broker."""
        if time.monotonic() < self._retry_at:
            return 0
        try:
            done = await self.publish_batch()
        except BrokerUnavailable as exc:
            self._failures += 1
            delay = min(self.max_backoff_s, 0.25 * 2**self._failures) * random.uniform(0.8, 1.2)
            self._retry_at = time.monotonic() + delay
            log.warning("outbox to NATS waits %.1f s (%d in a row): %s", delay, self._failures, exc)
            return 0
        self._failures = 0
        return done

    async def publish_batch(self) -> int:
        """Publish and settle one batch; returns how many events JetStream acknowledged.

        The next batch is claimed while this one is in flight (its claim cannot take a later
        event of an aggregate this batch holds), so the database and the broker work at once.
        """
        js = await self._jetstream()
        if not self.link.connected:
            self.metrics.connected.set(0)
            await self._release_prefetched()
            raise BrokerUnavailable("the NATS connection is down (reconnecting)")
        batch = self._prefetched
        self._prefetched = None
        if batch is None or not batch.events:
            batch = await self._claim()
        if not batch.events:
            return 0
        acked: list[int] = []
        prefetch = asyncio.create_task(self._claim())
        try:
            await self._publish(js, batch.events, acked)
        finally:
            await claims.settle(self.db, batch, acked)
            self._prefetched = await prefetch
            if not acked:
                await self._release_prefetched()
        if not acked:
            raise BrokerUnavailable(f"JetStream acknowledged none of {len(batch.events)} events")
        return len(acked)

    async def close(self) -> None:
        """Free a batch claimed ahead and close the NATS connection."""
        await self._release_prefetched()
        await self.link.close()
        self.metrics.connected.set(0)

    async def _claim(self) -> claims.Batch:
        return await claims.claim(
            self.db, limit=self.batch, lease_s=self.lease_s, postgres=self.postgres
        )

    async def _release_prefetched(self) -> None:
        batch, self._prefetched = self._prefetched, None
        if batch is not None and batch.events:
            await claims.settle(self.db, batch, [])

    async def _jetstream(self) -> JetStreamContext:
        try:
            js = await self.link.jetstream()
        except (OSError, TimeoutError, NatsTimeout, ConnectionClosedError) as exc:
            self.metrics.connected.set(0)
            self.metrics.failures.labels("disconnected").inc()
            raise BrokerUnavailable(f"cannot connect to NATS: {exc!r}") from exc
        except Exception as exc:  # nats-py raises its own errors for refused servers
            self.metrics.connected.set(0)
            if type(exc).__module__.startswith("nats."):
                self.metrics.failures.labels("disconnected").inc()
                raise BrokerUnavailable(f"cannot connect to NATS: {exc!r}") from exc
            raise
        self.metrics.connected.set(1 if self.link.connected else 0)
        return js

    async def _publish(
        self, js: JetStreamContext, events: Sequence[OutboxEvent], acked: list[int]
    ) -> None:
        """Publish in waves of at most one event per aggregate; note each acknowledged seq."""
        chains: dict[str, list[OutboxEvent]] = {}
        for event in events:  # in seq order, so each chain is its aggregate's order
            chains.setdefault(event.aggregate_id, []).append(event)
        depth = 0
        while chains:
            wave = [chain[depth] for chain in chains.values()]
            stored = await self._send_wave(js, wave)
            acked.extend(e.seq for e in wave if e.seq in stored)
            depth += 1
            chains = {
                aggregate: chain
                for aggregate, chain in chains.items()
                if chain[depth - 1].seq in stored and len(chain) > depth
            }

    async def _send_wave(self, js: JetStreamContext, wave: list[OutboxEvent]) -> set[int]:
        """Publish events of distinct aggregates, ``in_flight`` at a time; the seqs acked."""
        size = self.link.settings.in_flight
        stored: set[int] = set()
        for start in range(0, len(wave), size):
            chunk = wave[start : start + size]
            acked = await self._send_chunk(js, chunk)
            stored |= acked
            if not acked:
                # the rest of the wave would meet the same broker: stop here for this batch
                unsent = len(wave) - start - len(chunk)
                self.metrics.failures.labels("disconnected").inc(unsent)
                break
        return stored

    async def _send_chunk(self, js: JetStreamContext, wave: list[OutboxEvent]) -> set[int]:
        """Publish at most ``in_flight`` events at once: the semaphore of publish_async never
        blocks, so no call waits on it (its stall timeout costs a task per message)."""
        settings = self.link.settings
        futures: dict[asyncio.Future[PubAck], OutboxEvent] = {}
        for event in wave:
            if not self.link.connected:
                break
            id_ = event_id(event)
            try:
                future = await js.publish_async(
                    subject(settings.subject_prefix, event),
                    encode(event, id_),
                    stream=settings.name,
                    headers={"Nats-Msg-Id": id_},
                )
            except Exception as exc:
                log.warning("publishing outbox event %s to NATS failed: %r", event.seq, exc)
                break
            futures[future] = event
        unsent = len(wave) - len(futures)
        if unsent:
            self.metrics.failures.labels("disconnected").inc(unsent)
        if not futures:
            return set()
        return self._acknowledged(await _wait(futures, settings.ack_timeout_s), futures)

    def _acknowledged(
        self,
        done: set[asyncio.Future[PubAck]],
        futures: dict[asyncio.Future[PubAck], OutboxEvent],
    ) -> set[int]:
        stored: set[int] = set()
        refused: list[tuple[int, BaseException]] = []
        for future, event in futures.items():
            if future not in done or future.cancelled():
                self.metrics.failures.labels("timeout").inc()
            elif (error := future.exception()) is not None:
                refused.append((event.seq, error))
            else:
                stored.add(event.seq)
                if future.result().duplicate:
                    self.metrics.duplicates.inc()
        self.metrics.published.inc(len(stored))
        if refused:  # one line per wave: a stream without a leader refuses every event
            self.metrics.failures.labels("rejected").inc(len(refused))
            seq, error = refused[0]
            log.warning(
                "JetStream refused %d outbox events (first %s: %r)", len(refused), seq, error
            )
        return stored


async def _wait(
    futures: dict[asyncio.Future[PubAck], OutboxEvent], patience_s: float
) -> set[asyncio.Future[PubAck]]:
    """Wait for the acknowledgements up to ``patience_s``; cancel the ones still missing."""
    done, pending = await asyncio.wait(futures, timeout=patience_s)
    for future in pending:
        future.cancel()  # frees its place among the pending publishes
    return done
