"""The connection to NATS and the JetStream stream mercato publishes to.

:class:`Link` connects lazily (the relay's first batch, so start-up never waits for NATS and
checkout never depends on it), reconnects for ever, and on every new connection creates the
stream or checks it and updates what differs from the settings (subjects, replicas, age limit,
duplicate window). A retention policy cannot change on an existing stream: that is refused
with a message instead of recreating the stream, which would drop its messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger("mercato.events.nats")


class StreamMismatch(RuntimeError):
    """The existing stream cannot be brought to the configured settings."""


@dataclass(frozen=True)
class StreamSettings:
    """What the stream must look like (from the ``MERCATO_EVENTS_NATS_*`` settings)."""

    servers: list[str]
    name: str
    subject_prefix: str
    replicas: int
    retention: str
    max_age_s: float
    duplicate_window_s: float
    ack_timeout_s: float
    in_flight: int

    def config(self) -> StreamConfig:
        """The stream's configuration."""
        return StreamConfig(
            name=self.name,
            subjects=[f"{self.subject_prefix}.>"],
            retention=RetentionPolicy(self.retention),
            storage=StorageType.FILE,
            num_replicas=self.replicas,
            max_age=self.max_age_s,
            duplicate_window=self.duplicate_window_s,
        )


class Link:
    """One connection to NATS and its JetStream context, made when first needed."""

    def __init__(self, settings: StreamSettings) -> None:
        self.settings = settings
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    @property
    def connected(self) -> bool:
        """Whether a connection is up now (not reconnecting, not closed)."""
        return self._nc is not None and self._nc.is_connected

    async def jetstream(self) -> JetStreamContext:
        """The JetStream context, connecting and checking the stream first when needed."""
        if self._nc is not None and self._nc.is_closed:
            self._nc = self._js = None
        if self._js is None:
            nc = await self._connect()
            js = nc.jetstream(
                timeout=self.settings.ack_timeout_s,
                publish_async_max_pending=self.settings.in_flight,
            )
            try:
                await ensure_stream(js, self.settings.config())
            except BaseException:
                await nc.close()
                raise
            self._nc, self._js = nc, js
        return self._js

    async def _connect(self) -> Client:
        # Once connected, reconnect for ever; the first connection is bounded here instead
        # (nats-py would keep trying an unreachable server inside connect()).
        nc = Client()
        try:
            await asyncio.wait_for(
                nc.connect(
                    servers=self.settings.servers,
                    connect_timeout=max(1, round(self.settings.ack_timeout_s)),
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    allow_reconnect=True,
                    name="mercato-outbox-relay",
                    error_cb=_log_error,
                ),
                timeout=2 * self.settings.ack_timeout_s,
            )
        except BaseException:
            await nc.close()
            raise
        return nc

    async def close(self) -> None:
        """Close the connection (pending acknowledgements are abandoned)."""
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            await nc.close()


async def ensure_stream(js: JetStreamContext, wanted: StreamConfig) -> None:
    """Create the stream, or update the existing one where it differs from ``wanted``."""
    assert wanted.name is not None
    try:
        info = await js.stream_info(wanted.name)
    except NotFoundError:
        await js.add_stream(wanted)
        log.info("created JetStream stream %s (%s replicas)", wanted.name, wanted.num_replicas)
        return
    have = info.config
    if _value(have.retention) != _value(wanted.retention):
        raise StreamMismatch(
            f"stream {wanted.name} has retention {_value(have.retention)}, the settings say "
            f"{_value(wanted.retention)}: JetStream cannot change it; create a new stream "
            "(MERCATO_EVENTS_NATS_STREAM) or change the setting back"
        )
    fields = ("subjects", "num_replicas", "max_age", "duplicate_window")
    if any(getattr(have, f) != getattr(wanted, f) for f in fields):
        await js.update_stream(dataclasses.replace(have, **{f: getattr(wanted, f) for f in fields}))
        log.info("updated JetStream stream %s to the settings", wanted.name)


def _value(policy: Any) -> str:
    return str(getattr(policy, "value", policy))


async def _log_error(error: Exception) -> None:
    log.warning("NATS connection: %s", error)
