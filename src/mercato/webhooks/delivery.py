"""The webhook dispatcher: a worker that sends due deliveries with a bounded pool of requests.

Each ``run_once`` claims a batch of due deliveries into a queue and starts one task per free
slot of the pool; it does not wait for them. A finished task starts the next queued delivery at
once and wakes the worker to claim more, so a slow endpoint holds only its own slots (at most
``per_endpoint`` of them, counted across every process by the claim) while the others keep
flowing. Every attempt is recorded in the delivery log; a failure is retried on the schedule of
:func:`mercato.webhooks.domain.retry_delay`, an answer of 410 disables the endpoint, and an
endpoint failing for longer than ``disable_after`` is disabled, each with a
``WebhookEndpointDisabled`` event for staff.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from mercato.kernel.clock import utcnow
from mercato.platform.uow import Transactor, UnitOfWork
from mercato.webhooks.domain import (
    JITTER,
    Attempt,
    Delivery,
    DeliveryStatus,
    DisabledReason,
    retry_delay,
    should_disable,
)
from mercato.webhooks.events import WebhookEndpointDisabled
from mercato.webhooks.sender import Outcome, WebhookSender
from mercato.webhooks.store import DeliveryRepository, Target

log = logging.getLogger("mercato.webhooks")


class WebhookDispatcher:
    """The ``webhook-dispatcher`` worker; see the module docstring."""

    name = "webhook-dispatcher"

    def __init__(
        self,
        transact: Transactor,
        sender: WebhookSender,
        *,
        concurrency: int,
        per_endpoint: int,
        disable_after: timedelta,
        lease: timedelta,
        jitter: Callable[[], float] = lambda: random.uniform(1 - JITTER, 1 + JITTER),
    ) -> None:
        self._transact = transact
        self.sender = sender
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.disable_after = disable_after
        self.lease = lease
        self._jitter = jitter
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: deque[tuple[Delivery, Target]] = deque()
        self.wake: Callable[[], None] = lambda: None

    @property
    def in_flight(self) -> int:
        """Deliveries claimed by this process and not yet recorded (sending or queued)."""
        return len(self._tasks) + len(self._queue)

    async def run_once(self) -> int:
        """Claim due deliveries while the queue is less than half full; how many were claimed.

        Claimed deliveries wait in a queue of at most ``concurrency`` and start as slots free
        up (without a database round trip), so the claim's cost is paid per batch.
        """
        room = 2 * self.concurrency - self.in_flight
        if room <= self.concurrency // 2:
            self._start_queued()
            return 0
        claimed, targets = await self._transact(lambda uow: self._claim(uow, room))
        for delivery in claimed:
            target = targets.get(delivery.endpoint_id)
            if target is not None:  # else disabled or deleted since: its lease runs out
                self._queue.append((delivery, target))
        self._start_queued()
        return len(claimed)

    def _start_queued(self) -> None:
        while self._queue and len(self._tasks) < self.concurrency:
            delivery, target = self._queue.popleft()
            work = self._deliver(delivery, target)
            task = asyncio.create_task(work, name=f"webhook:{delivery.id}")
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    async def _claim(self, uow: UnitOfWork, limit: int) -> tuple[list[Delivery], dict[str, Target]]:
        now = utcnow()
        deliveries = uow.repository(DeliveryRepository)
        claimed = await deliveries.claim(
            now=now, until=now + self.lease, limit=limit, per_endpoint=self.per_endpoint
        )
        return claimed, (await deliveries.targets() if claimed else {})

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery failed", exc_info=task.exception())
        self._start_queued()
        self.wake()

    async def _deliver(self, delivery: Delivery, target: Target) -> None:
        at = utcnow()
        outcome = await self.sender.send(
            target.url,
            secret=target.secret,
            msg_id=delivery.id,
            at=at,
            body=delivery.payload.encode(),
        )
        attempt = Attempt(
            delivery.attempts + 1, at, outcome.status_code, outcome.error, outcome.duration_ms
        )
        await self._transact(lambda uow: self._record(uow, delivery, target, attempt, outcome))

    async def _record(
        self,
        uow: UnitOfWork,
        delivery: Delivery,
        target: Target,
        attempt: Attempt,
        outcome: Outcome,
    ) -> None:
        deliveries = uow.repository(DeliveryRepository)
        now = utcnow()
        delay = None if outcome.succeeded or outcome.gone else self._delay(attempt.number)
        status = DeliveryStatus.SUCCEEDED if outcome.succeeded else DeliveryStatus.FAILED
        if delay is not None:
            status = DeliveryStatus.PENDING
        next_at = None if delay is None else now + delay
        if not await deliveries.record(delivery, attempt, status=status, next_attempt_at=next_at):
            return  # another process recorded this attempt (a lease that ran out)
        if outcome.succeeded:
            if target.failing:  # as of the claim; a later failure is cleared by a later success
                await deliveries.endpoint_succeeded(delivery.endpoint_id)
        elif outcome.gone:
            await self._disable(uow, delivery.endpoint_id, DisabledReason.GONE)
        else:
            since = await deliveries.endpoint_failed(delivery.endpoint_id, now)
            if should_disable(since, now, after=self.disable_after):
                await self._disable(uow, delivery.endpoint_id, DisabledReason.FAILING)

    def _delay(self, attempts: int) -> timedelta | None:
        return retry_delay(attempts, jitter=self._jitter())

    async def _disable(self, uow: UnitOfWork, endpoint_id: str, reason: DisabledReason) -> None:
        disabled = await uow.repository(DeliveryRepository).disable_endpoint(endpoint_id, reason)
        if disabled is None:
            return
        url, since = disabled
        log.warning("webhook endpoint %s (%s) disabled: %s", endpoint_id, url, reason.value)
        uow.add(
            WebhookEndpointDisabled(
                endpoint_id=endpoint_id,
                url=url,
                reason=reason.value,
                failing_since=_iso(since),
            )
        )

    async def wait_idle(self) -> None:
        """Wait until no request is in flight or queued (the tests' way to let a round end)."""
        while self._tasks or self._queue:
            self._start_queued()
            await asyncio.gather(*set(self._tasks), return_exceptions=True)

    async def drain(self, grace: float = 10.0) -> None:
        """Let the requests in flight finish for up to ``grace`` seconds, then cancel them."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.sender.close()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
