"""Kill switches: parts of the service that operators can switch off at run time, no rollout.

A switch is a row in ``platform_switches`` (no row: on). Every process reads all of them with
one query at most every ``ttl_s`` seconds (when a request asks and its copy is older), so a
switch flipped by any process or by ``mercato switch`` is in force everywhere within that
bound, and at once in the process that flipped it. A request to a part that is switched off
is answered 503 ``switched_off`` with ``Retry-After`` and the switch's name; nothing is read
or written. If the table cannot be read, the last states read stay in force (a database
outage is answered by the database checks, not by reopening what an operator closed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.dialects import postgresql

from mercato.kernel.clock import utcnow
from mercato.kernel.errors import Unavailable
from mercato.platform.db import Database, DatabaseError, metadata, run_in_transaction, sql
from mercato.platform.error_codes import ErrorCode

log = logging.getLogger("mercato.switches")

SWITCH_CACHE_S = 2.0
RETRY_AFTER_S = 30


class Switch(StrEnum):
    """What can be switched off."""

    CHECKOUT = "checkout"  # placing orders (POST /v1/orders/{id}/place)
    DISCOUNT_CODES = "discount_codes"  # applying a discount code to an order
    REALTIME = "realtime"  # following orders: long polls and event streams


switches_table = sa.Table(
    "platform_switches",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("changed_by", sa.String(100), nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)

_s = switches_table.c
_ALL = sql(sa.select(_s.name, _s.enabled, _s.reason, _s.changed_by, _s.changed_at))
_upsert = postgresql.insert(switches_table).values(
    name=sa.bindparam("name"),
    enabled=sa.bindparam("enabled"),
    reason=sa.bindparam("reason"),
    changed_by=sa.bindparam("changed_by"),
    changed_at=sa.bindparam("changed_at"),
)
_SET = sql(
    _upsert.on_conflict_do_update(
        index_elements=[_s.name],
        set_={
            "enabled": _upsert.excluded.enabled,
            "reason": _upsert.excluded.reason,
            "changed_by": _upsert.excluded.changed_by,
            "changed_at": _upsert.excluded.changed_at,
        },
    )
)


class SwitchedOff(Unavailable):
    """The part of the service asked for is switched off by an operator (HTTP 503)."""

    retry_after: int | None = RETRY_AFTER_S


@dataclass(frozen=True)
class SwitchState:
    """One switch as stored (or its default: on, never changed)."""

    name: Switch
    enabled: bool
    reason: str = ""
    changed_by: str = ""
    changed_at: datetime | None = None


class Switches:
    """The switches as this process last read them, refreshed at most every ``ttl_s``."""

    def __init__(
        self, db: Database, *, ttl_s: float = SWITCH_CACHE_S, registry: CollectorRegistry | None
    ) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self._states = {s: SwitchState(s, True) for s in Switch}
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()
        self._enabled = Gauge(
            "mercato_switch_enabled",
            "Whether a kill switch lets its part of the service run (1) or not (0).",
            ["switch"],
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self._refused = Counter(
            "mercato_switch_refusals",
            "Requests refused because their part of the service was switched off.",
            ["switch"],
            registry=registry,
        )
        for switch in Switch:
            self._enabled.labels(switch.value).set(1)
            self._refused.labels(switch.value)

    async def states(self, *, fresh: bool = False) -> dict[Switch, SwitchState]:
        """Every switch's state, read again when older than ``ttl_s`` (or ``fresh``)."""
        if fresh or time.monotonic() - self._read_at >= self.ttl_s:
            async with self._lock:
                if fresh or time.monotonic() - self._read_at >= self.ttl_s:
                    await self._refresh()
        return dict(self._states)

    async def refresh(self) -> None:
        """Read the switches again now if this process's copy is stale (a scrape-time hook)."""
        await self.states()

    async def _refresh(self) -> None:
        started = time.monotonic()
        try:
            async with self.db.connection() as conn:
                rows = await conn.fetch(_ALL)
        except DatabaseError as exc:
            # tried again after ttl_s, not by every request meanwhile (each would wait here)
            self._read_at = started
            log.warning("switches not read (%s); the last states stay in force", exc)
            return
        states = {s: SwitchState(s, True) for s in Switch}
        for row in rows:
            if row["name"] in Switch.__members__.values():
                name = Switch(row["name"])
                states[name] = SwitchState(
                    name, bool(row["enabled"]), row["reason"], row["changed_by"], row["changed_at"]
                )
        self._states = states
        self._read_at = started
        for switch, state in states.items():
            self._enabled.labels(switch.value).set(1 if state.enabled else 0)

    async def require(self, switch: Switch) -> None:
        """Raise :class:`SwitchedOff` when ``switch`` is off."""
        state = (await self.states())[switch]
        if not state.enabled:
            self._refused.labels(switch.value).inc()
            raise SwitchedOff(
                ErrorCode.SWITCHED_OFF,
                f"{switch.value} is switched off for now"
                + (f": {state.reason}" if state.reason else ""),
                switch=switch.value,
            )

    async def set(self, switch: Switch, *, enabled: bool, reason: str, actor: str) -> SwitchState:
        """Store a switch's state; in force here at once, elsewhere within ``ttl_s``."""
        params: dict[str, Any] = {
            "name": switch.value,
            "enabled": enabled,
            "reason": reason,
            "changed_by": actor,
            "changed_at": utcnow(),
        }

        async def store(conn: Any) -> None:
            await conn.execute(_SET, **params)

        await run_in_transaction(self.db, store)
        log.warning(
            "switch %s turned %s by %s: %s", switch, "on" if enabled else "off", actor, reason
        )
        return (await self.states(fresh=True))[switch]


def requirement(switch: Switch) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency refusing the route while ``switch`` is off."""

    async def require(request: Request) -> None:
        switches: Switches = request.app.state.switches
        await switches.require(switch)

    return require
