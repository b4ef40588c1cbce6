"""Webhook endpoints: the aggregate's repository."""

from __future__ import annotations

from collections.abc import Hashable

import sqlalchemy as sa

from mercato.platform.db import sql
from mercato.platform.uow import TrackingRepository
from mercato.webhooks.domain import WebhookConflict, WebhookEndpoint, WebhookNotFound
from mercato.webhooks.store.tables import (
    attempts,
    deliveries,
    endpoint_from_row,
    endpoint_row,
    endpoints,
)

_e, _d, _a = endpoints.c, deliveries.c, attempts.c
_id: sa.BindParameter[str] = sa.bindparam("id")

_INSERT = sql(sa.insert(endpoints).values({c.name: sa.bindparam(c.name) for c in endpoints.c}))
_BY_ID = sql(sa.select(endpoints).where(_e.id == _id))
_BY_ID_FOR_UPDATE = sql(sa.select(endpoints).where(_e.id == _id).with_for_update())
_ENABLED = sql(sa.select(endpoints).where(_e.enabled.is_(True)).order_by(_e.id))
_PAGE = sql(
    sa.select(endpoints)
    .where(_e.id > sa.bindparam("after"))
    .order_by(_e.id)
    .limit(sa.bindparam("limit"))
)
_EDITABLE = ("url", "event_types", "enabled", "description", "disabled_reason", "failing_since")
_UPDATE = sql(
    sa.update(endpoints)
    .where(_e.id == _id, _e.version == sa.bindparam("expected"))
    .values({name: sa.bindparam(name) for name in (*_EDITABLE, "version")})
)
_DELETE_ATTEMPTS = sql(
    sa.delete(attempts).where(
        _a.delivery_id.in_(sa.select(_d.id).where(_d.endpoint_id == _id).scalar_subquery())
    )
)
_DELETE_DELIVERIES = sql(sa.delete(deliveries).where(_d.endpoint_id == _id))
_DELETE = sql(sa.delete(endpoints).where(_e.id == _id, _e.version == sa.bindparam("expected")))


class EndpointRepository(TrackingRepository[WebhookEndpoint]):
    """Webhook endpoints; a staff edit is guarded by the version it was loaded with."""

    __slots__ = ()

    async def get(self, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint:
        """The endpoint, or WebhookNotFound; ``lock`` row-locks it until commit."""
        row = await self.conn.fetchrow(_BY_ID_FOR_UPDATE if lock else _BY_ID, id=endpoint_id)
        if row is None:
            raise WebhookNotFound(endpoint_id)
        return self._track(endpoint_from_row(row))

    async def add(self, endpoint: WebhookEndpoint) -> None:
        """Insert a new endpoint."""
        await self.conn.execute(_INSERT, **endpoint_row(endpoint))
        self._track_new(endpoint)

    async def enabled(self) -> list[WebhookEndpoint]:
        """Every enabled endpoint (not tracked: read only)."""
        return [endpoint_from_row(r) for r in await self.conn.fetch(_ENABLED)]

    async def page(self, *, after: str | None, limit: int) -> list[WebhookEndpoint]:
        """Up to ``limit`` endpoints with ids after ``after``, oldest first."""
        rows = await self.conn.fetch(_PAGE, after=after or "", limit=limit)
        return [self._track(endpoint_from_row(r)) for r in rows]

    async def delete(self, endpoint: WebhookEndpoint) -> None:
        """Delete the endpoint with its delivery log (the endpoint must be locked)."""
        endpoint.delete()
        await self.conn.execute(_DELETE_ATTEMPTS, id=endpoint.id)
        await self.conn.execute(_DELETE_DELIVERIES, id=endpoint.id)
        if await self.conn.execute(_DELETE, id=endpoint.id, expected=endpoint.version - 1) != 1:
            raise WebhookConflict(endpoint.id)
        self._tracked[id(endpoint)] = (endpoint, endpoint.version)

    def _token(self, aggregate: WebhookEndpoint) -> Hashable:
        return aggregate.version

    async def _write(self, aggregate: WebhookEndpoint, *, expected: Hashable) -> bool:
        row = endpoint_row(aggregate)
        values = {name: row[name] for name in (*_EDITABLE, "version")}
        return await self.conn.execute(_UPDATE, id=aggregate.id, expected=expected, **values) == 1

    async def _conflict(self, aggregate: WebhookEndpoint) -> Exception:
        return WebhookConflict(aggregate.id)
