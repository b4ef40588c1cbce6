"""Building blocks for the webhook tests: endpoints that are removed afterwards, synthetic
events, a dispatcher with a fixed jitter, and raw reads and writes of deliveries."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.platform.db import Row, sql
from mercato.platform.outbox import OutboxEvent
from mercato.webhooks import AddressGuard
from mercato.webhooks.delivery import WebhookDispatcher
from mercato.webhooks.sender import WebhookSender
from mercato.webhooks.store import deliveries, endpoints

_SEQ = itertools.count(10**12)  # far above any outbox sequence a test run reaches
_DELIVERIES = sql(
    sa.select(deliveries)
    .where(deliveries.c.endpoint_id == sa.bindparam("endpoint_id"))
    .order_by(deliveries.c.event_seq)
)
_DUE_NOW = sql(
    sa.update(deliveries)
    .where(deliveries.c.endpoint_id == sa.bindparam("endpoint_id"))
    .values(next_attempt_at=sa.bindparam("at"))
)
_FAILING_SINCE = sql(
    sa.update(endpoints)
    .where(endpoints.c.id == sa.bindparam("id"))
    .values(failing_since=sa.bindparam("since"))
)


def event(event_type: str = "ProductCreated", **payload: Any) -> OutboxEvent:
    """An event as the relay hands it over, with a sequence number no real event has."""
    return OutboxEvent(
        seq=next(_SEQ),
        aggregate_type="product",
        aggregate_id="01900000-0000-7000-8000-00000000abcd",
        event_type=event_type,
        payload=payload or {"product_id": "01900000-0000-7000-8000-00000000abcd"},
        occurred_at=datetime.now(UTC),
    )


@asynccontextmanager
async def endpoints_made(container: Container) -> AsyncIterator[list[str]]:
    """Ids of the endpoints a test registers; each is deleted (with its log) afterwards, so no
    enabled endpoint of this test is left for another test's deliveries."""
    made: list[str] = []
    try:
        yield made
    finally:
        for endpoint_id in made:
            await container.webhooks.delete(endpoint_id)


async def register(
    container: Container, made: list[str], url: str, event_types: list[str] | None = None
) -> tuple[str, str]:
    """A new enabled endpoint; its id and secret."""
    endpoint = await container.webhooks.create(url=url, event_types=event_types or ["*"])
    made.append(endpoint.id)
    return endpoint.id, endpoint.secret


def dispatcher(
    container: Container,
    *,
    concurrency: int = 8,
    per_endpoint: int = 4,
    timeout_s: float = 5.0,
    disable_after: timedelta = timedelta(days=5),
    guard: AddressGuard | None = None,
) -> WebhookDispatcher:
    """A dispatcher whose retries wait exactly the schedule's delays (no jitter)."""
    sender = WebhookSender(
        guard or AddressGuard(allow_private=True),
        timeout_s=timeout_s,
        max_connections=concurrency,
    )
    return WebhookDispatcher(
        container.transact,
        sender,
        concurrency=concurrency,
        per_endpoint=per_endpoint,
        disable_after=disable_after,
        lease=timedelta(seconds=2 * timeout_s + 30),
        jitter=lambda: 1.0,
    )


async def rounds(worker: WebhookDispatcher) -> None:
    """Run the dispatcher until nothing is due and nothing is in flight."""
    while await worker.run_once() or worker.in_flight:
        await worker.wait_idle()


async def deliveries_of(container: Container, endpoint_id: str) -> list[Row]:
    async with container.db.connection() as conn:
        return await conn.fetch(_DELIVERIES, endpoint_id=endpoint_id)


async def make_due(container: Container, endpoint_id: str) -> None:
    """Move every delivery of the endpoint's next attempt into the past (time passing)."""
    async with container.db.transaction() as conn:
        await conn.execute(
            _DUE_NOW, endpoint_id=endpoint_id, at=datetime.now(UTC) - timedelta(seconds=1)
        )


async def failing_since(container: Container, endpoint_id: str, since: datetime) -> None:
    async with container.db.transaction() as conn:
        await conn.execute(_FAILING_SINCE, id=endpoint_id, since=since)
