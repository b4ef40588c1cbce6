"""The database pool's use and the LISTEN connection's state, as /metrics exports them."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mercato.bootstrap import Container
from mercato.platform.connection_metrics import connection_sampler
from mercato.platform.metrics import Metrics
from mercato.platform.notify_postgres import PgListener
from tests.integration.follow import Recorder, eventually

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, str | None], float]


def parse(body: bytes) -> Samples:
    return {
        (s.name, s.labels.get("state")): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


async def samples(container: Container) -> Samples:
    body, _ = await container.metrics.render()
    return parse(body)


def state(found: Samples) -> str | None:
    """The LISTEN connection's state, as the one label set to 1."""
    names = ("connected", "disconnected", "idle")
    on = [n for n in names if found.get(("mercato_notify_listener_state", n)) == 1]
    assert len(on) <= 1, found
    return on[0] if on else None


async def test_connections_held_from_the_pool_are_exported_as_in_use(
    backend: str, container: Container
) -> None:
    in_use = ("mercato_db_pool_connections", "in_use")
    if backend != "postgres":
        assert in_use not in await samples(container), "SQLite has no pool to report"
        return
    before = await samples(container)
    async with container.db.connection(), container.db.connection():
        held = await samples(container)
    assert held[in_use] == before[in_use] + 2
    assert held[("mercato_db_pool_connections", "max")] == container.settings.database_pool_size
    assert (await samples(container))[in_use] == before[in_use]


async def test_the_listen_connection_state_and_its_reconnects_are_exported(
    backend: str, container: Container
) -> None:
    connects = ("mercato_notify_listener_connects_total", None)
    listener = container.notifier.listener
    if backend != "postgres":
        assert listener is None
        assert state(await samples(container)) is None
        return
    assert isinstance(listener, PgListener)
    assert state(await samples(container)) == "idle"  # nobody follows: nothing listens
    await container.notifier.follow(Recorder(), aggregate_type="order", stream=True)
    await eventually(lambda: listener.connected, within=5)
    found = await samples(container)
    assert (state(found), found[connects]) == ("connected", 1)

    async with container.db.connection() as conn:
        await conn.execute_text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'mercato-listen' AND datname = current_database()"
        )
    await eventually(lambda: listener.connects >= 2 and listener.connected, within=5)
    found = await samples(container)
    assert (state(found), found[connects]) == ("connected", 2)


async def test_a_listener_that_cannot_connect_is_exported_as_disconnected() -> None:
    metrics = Metrics()
    listener = PgListener(
        "postgresql://mercato@127.0.0.1:9/nowhere",
        channel="mercato_outbox",
        on_notify=lambda seq: None,
        on_connect=lambda: None,
        timeout=1,
    )
    metrics.on_flush(connection_sampler(object(), listener, metrics))  # type: ignore[arg-type]
    listener.start()
    try:
        body, _ = await metrics.render()
        assert state(parse(body)) == "disconnected"
    finally:
        await listener.stop()
    body, _ = await metrics.render()
    assert state(parse(body)) == "idle"
