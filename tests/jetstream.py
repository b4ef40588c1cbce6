"""Helpers for the JetStream tests: a relay for a test's own stream, reading a stream back."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import nats
import orjson
import sqlalchemy as sa
from jsonschema import Draft202012Validator
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import ServiceUnavailableError

from mercato.kernel.clock import utcnow
from mercato.platform.db import Database, sql
from mercato.platform.jetstream import Link, NatsRelay, RelayMetrics, StreamSettings
from mercato.platform.outbox import outbox

_SKIP_BACKLOG = sql(
    sa.update(outbox)
    .where(outbox.c.nats_published_at.is_(None), outbox.c.nats_claim.is_(None))
    .values(nats_published_at=sa.bindparam("at"))
)


async def skip_backlog(db: Database) -> None:
    """Count every event already in the shared test database as sent to NATS.

    The session's database holds other tests' events; a test's stream starts after them, as a
    stream turned on with an empty outbox would (nothing is deleted).
    """
    async with db.transaction() as conn:
        await conn.execute(_SKIP_BACKLOG, at=utcnow())


def stream_settings(servers: str, **overrides: Any) -> StreamSettings:
    """Settings for a stream of the test's own (unique name and subjects)."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "servers": servers.split(","),
        "name": f"T{tag}",
        "subject_prefix": f"t{tag}",
        "replicas": 1,
        "retention": "limits",
        "max_age_s": 3600.0,
        "duplicate_window_s": 120.0,
        "ack_timeout_s": 2.0,
        "in_flight": 500,
    }
    values.update(overrides)
    return StreamSettings(**values)


def relay_for(
    db: Database, settings: StreamSettings, *, postgres: bool, **options: Any
) -> NatsRelay:
    """A relay publishing to the test's stream, with metrics of its own."""
    return NatsRelay(db, Link(settings), RelayMetrics(None), postgres=postgres, **options)


async def drain(relay: NatsRelay, rounds: int = 1000) -> None:
    """Run the relay until a batch finds nothing to publish."""
    for _ in range(rounds):
        if not await relay.run_once():
            return


class Received:
    """Every message of a stream, in stream order."""

    def __init__(self, messages: list[tuple[str, dict[str, str], dict[str, Any]]]) -> None:
        self.messages = messages

    def envelopes(self, aggregates: set[str]) -> list[dict[str, Any]]:
        """The envelopes of these aggregates, in stream order."""
        return [env for _, _, env in self.messages if env["aggregate_id"] in aggregates]

    def by_aggregate(self, aggregates: set[str]) -> dict[str, list[int]]:
        """Each aggregate's outbox sequence numbers, in stream order."""
        found: dict[str, list[int]] = defaultdict(list)
        for env in self.envelopes(aggregates):
            found[env["aggregate_id"]].append(env["sequence"])
        return dict(found)


async def read_stream(servers: str, settings: StreamSettings, *, limit_s: float = 60) -> Received:
    """Everything in the stream now, through an ephemeral pull consumer.

    Reads until it has as many messages as the stream holds. A cluster just brought back may
    still be electing its stream's or the consumer's leader and answer 503 meanwhile: that is
    waited out, within ``limit_s``, like a fetch that found nothing yet.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    nc = await nats.connect(servers=servers.split(","), connect_timeout=5)
    try:
        js = nc.jetstream(timeout=10)
        while True:
            try:
                expected = (await js.stream_info(settings.name)).state.messages
                sub = await js.pull_subscribe(f"{settings.subject_prefix}.>", stream=settings.name)
                break
            except (NatsTimeout, TimeoutError, ServiceUnavailableError):
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.5)
        messages: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        while len(messages) < expected and loop.time() < deadline:
            try:
                batch = await sub.fetch(batch=1000, timeout=1.0)
            except (NatsTimeout, TimeoutError, ServiceUnavailableError):
                await asyncio.sleep(0.2)
                continue
            for msg in batch:
                messages.append((msg.subject, dict(msg.headers or {}), orjson.loads(msg.data)))
                await msg.ack()
        return Received(messages)
    finally:
        await nc.close()


SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "events" / "v1"


@functools.cache
def _validator(event_type: str) -> Draft202012Validator:
    document = orjson.loads((SCHEMAS / f"{event_type}.schema.json").read_bytes())
    return Draft202012Validator(document, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(envelope: dict[str, Any]) -> list[str]:
    """What the documented schema of the envelope's event type finds wrong with it."""
    return [e.message for e in _validator(envelope["type"]).iter_errors(envelope)]
