"""Webhook use cases: staff manage endpoints and replay deliveries; events fan out to them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from mercato.kernel.clock import utcnow
from mercato.kernel.ids import new_id
from mercato.platform.outbox import OutboxEvent
from mercato.platform.pagination import Page, page_of
from mercato.platform.uow import Transactor, UnitOfWork
from mercato.webhooks.addresses import AddressGuard
from mercato.webhooks.domain import (
    Attempt,
    Delivery,
    DeliveryNotFound,
    WebhookEndpoint,
    check_event_types,
    check_url,
)
from mercato.webhooks.store import DeliveryRepository, EndpointRepository

# Which endpoints are enabled is read at most this often by the relay's fan-out: an endpoint
# registered or enabled in another process gets the events relayed from then on.
ENDPOINTS_CACHE_S = 1.0


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    """A delivery with every attempt made so far."""

    delivery: Delivery
    attempts: list[Attempt]


def envelope(event: OutboxEvent) -> str:
    """The body every endpoint receives for an event (docs/webhooks.md)."""
    return orjson.dumps(
        {
            "type": event.event_type,
            "timestamp": event.occurred_at.isoformat(),
            "data": {
                **event.payload,
                "aggregate_type": event.aggregate_type,
                "aggregate_id": event.aggregate_id,
                "sequence": event.seq,
            },
        }
    ).decode()


class WebhooksService:
    """The webhooks module's use cases."""

    def __init__(
        self,
        transact: Transactor,
        *,
        event_types: frozenset[str],
        guard: AddressGuard,
        require_https: bool,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self._transact = transact
        self.event_types = event_types
        self._guard = guard
        self._require_https = require_https
        self.on_enqueued = on_enqueued
        self._endpoints: tuple[float, list[WebhookEndpoint]] | None = None

    async def _checked_url(self, url: str) -> str:
        check_url(url, require_https=self._require_https)
        await self._guard.check(url)
        return url

    async def create(
        self, *, url: str, event_types: list[str], description: str = "", enabled: bool = True
    ) -> WebhookEndpoint:
        """Register an endpoint; its signing secret is in the result, and shown only then."""
        types = check_event_types(event_types, self.event_types)
        checked = await self._checked_url(url)

        async def work(uow: UnitOfWork) -> WebhookEndpoint:
            endpoint = WebhookEndpoint.register(
                id=new_id(),
                url=checked,
                event_types=types,
                description=description,
                enabled=enabled,
                now=utcnow(),
            )
            await uow.repository(EndpointRepository).add(endpoint)
            return endpoint

        created = await self._transact(work)
        self._endpoints = None
        return created

    async def get(self, endpoint_id: str) -> WebhookEndpoint:
        """The endpoint; WebhookNotFound if there is none."""
        return await self._transact.read(
            lambda uow: uow.repository(EndpointRepository).get(endpoint_id)
        )

    async def list_endpoints(self, *, after: str | None, limit: int) -> Page[WebhookEndpoint]:
        """A page of endpoints, oldest first."""
        rows = await self._transact.read(
            lambda uow: uow.repository(EndpointRepository).page(after=after, limit=limit + 1)
        )
        return page_of(rows, limit)

    async def update(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        event_types: list[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        """Change an endpoint; enabling it again forgets its past failures."""
        types = None if event_types is None else check_event_types(event_types, self.event_types)
        checked = None if url is None else await self._checked_url(url)

        async def work(uow: UnitOfWork) -> WebhookEndpoint:
            endpoints = uow.repository(EndpointRepository)
            endpoint = await endpoints.get(endpoint_id, lock=True)
            endpoint.change(
                url=checked, event_types=types, description=description, enabled=enabled
            )
            await endpoints.save(endpoint)
            return endpoint

        changed = await self._transact(work)
        self._endpoints = None
        if enabled:
            self.on_enqueued()  # its pending deliveries are due again
        return changed

    async def delete(self, endpoint_id: str) -> None:
        """Remove an endpoint and its delivery log."""

        async def work(uow: UnitOfWork) -> None:
            endpoints = uow.repository(EndpointRepository)
            await endpoints.delete(await endpoints.get(endpoint_id, lock=True))

        await self._transact(work)
        self._endpoints = None

    async def deliveries(
        self, endpoint_id: str, *, before: str | None, limit: int
    ) -> Page[Delivery]:
        """A page of an endpoint's deliveries, newest first."""

        async def work(uow: UnitOfWork) -> list[Delivery]:
            await uow.repository(EndpointRepository).get(endpoint_id)
            return await uow.repository(DeliveryRepository).page(
                endpoint_id, before=before, limit=limit + 1
            )

        return page_of(await self._transact.read(work), limit)

    async def delivery(self, endpoint_id: str, delivery_id: str) -> DeliveryLog:
        """One delivery of an endpoint with its attempts."""

        async def work(uow: UnitOfWork) -> DeliveryLog:
            await uow.repository(EndpointRepository).get(endpoint_id)
            found = await uow.repository(DeliveryRepository).get(endpoint_id, delivery_id)
            if found is None:
                raise DeliveryNotFound(delivery_id)
            return DeliveryLog(found, await uow.repository(DeliveryRepository).attempts(found.id))

        return await self._transact.read(work)

    async def replay(self, endpoint_id: str, delivery_id: str) -> DeliveryLog:
        """Send a delivery again, now, whatever became of it (same webhook-id)."""

        async def work(uow: UnitOfWork) -> None:
            await uow.repository(EndpointRepository).get(endpoint_id, lock=True)
            replayed = await uow.repository(DeliveryRepository).replay(
                endpoint_id, delivery_id, utcnow()
            )
            if not replayed:
                raise DeliveryNotFound(delivery_id)

        await self._transact(work)
        self.on_enqueued()
        return await self.delivery(endpoint_id, delivery_id)

    async def on_event(self, event: OutboxEvent) -> None:
        """Outbox subscriber: one pending delivery per enabled endpoint that wants the event.

        Idempotent: an event relayed again adds no second delivery for an endpoint. An event
        no endpoint wants costs no statement (the relay's hot path).
        """
        wanted = [e.id for e in await self._subscribers() if e.wants(event.event_type)]
        if not wanted:
            return
        now, body = utcnow(), envelope(event)
        rows: list[dict[str, object]] = [
            {
                "id": new_id(),
                "endpoint_id": endpoint_id,
                "event_seq": event.seq,
                "event_type": event.event_type,
                "payload": body,
                "now": now,
            }
            for endpoint_id in wanted
        ]
        await self._transact(lambda uow: uow.repository(DeliveryRepository).enqueue(rows))
        self.on_enqueued()

    async def _subscribers(self) -> list[WebhookEndpoint]:
        """The enabled endpoints, read at most every ENDPOINTS_CACHE_S (at once after a change
        made through this process)."""
        cached = self._endpoints
        if cached is not None and time.monotonic() - cached[0] < ENDPOINTS_CACHE_S:
            return cached[1]
        started = time.monotonic()
        found = await self._transact.read(lambda uow: uow.repository(EndpointRepository).enabled())
        self._endpoints = (started, found)
        return found
