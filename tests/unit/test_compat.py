"""The library internals platform/compat.py relies on, checked against the installed versions.

A failure here means an upgrade moved one of them: adapt platform/compat.py (and only it)
before anything else.
"""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

import pytest
import uvicorn
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from pydantic_settings import PydanticBaseSettingsSource
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from mercato.platform import compat

pytestmark = pytest.mark.anyio


def histogram() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    return registry, Histogram("t_seconds", "test", registry=registry, buckets=(0.1, 1.0))


def exposed(registry: CollectorRegistry) -> list[str]:
    """The exposition without its creation times, which differ between two histograms."""
    return [ln for ln in generate_latest(registry).decode().splitlines() if "_created" not in ln]


def test_prometheus_client_histograms_keep_bounds_buckets_and_sum_where_compat_reads_them() -> None:
    _, h = histogram()

    for name in ("_upper_bounds", "_buckets", "_sum"):
        assert hasattr(h, name), f"prometheus-client {version('prometheus-client')} moved {name}"
    assert list(h._upper_bounds) == [0.1, 1.0, float("inf")]
    assert len(h._buckets) == len(h._upper_bounds)


def test_observing_many_at_once_exposes_what_observing_one_by_one_does() -> None:
    values = [0.05, 0.1, 0.5, 3.0, 0.2, 0.1]
    batch_registry, batched = histogram()
    single_registry, single = histogram()

    compat.observe_many(batched, values)
    for value in values:
        single.observe(value)

    assert exposed(batch_registry) == exposed(single_registry)
    assert 't_seconds_bucket{le="0.1"} 3.0' in exposed(batch_registry)


def test_uvicorn_still_has_the_private_step_the_server_hooks_into() -> None:
    step = getattr(uvicorn.Server, "_wait_tasks_to_complete", None)

    assert step is not None, f"uvicorn {version('uvicorn')} renamed _wait_tasks_to_complete"
    assert inspect.iscoroutinefunction(step)
    assert compat.Server._wait_tasks_to_complete is not step


@pytest.mark.parametrize("protocol", [H11Protocol, HttpToolsProtocol])
def test_uvicorn_connections_start_without_a_request_cycle(protocol: type) -> None:
    source = inspect.getsource(protocol.__init__)

    assert "self.cycle" in source, f"uvicorn {version('uvicorn')}: {protocol.__name__}.cycle"
    assert isinstance(ServerState().connections, set)


def test_a_connection_without_a_cycle_is_awaiting_its_request() -> None:
    class Connection:
        def __init__(self, cycle: object) -> None:
            self.cycle = cycle

    state = ServerState()
    state.connections.add(Connection(object()))  # type: ignore[arg-type]
    assert not compat.awaiting_request(state)
    state.connections.add(Connection(None))  # type: ignore[arg-type]
    assert compat.awaiting_request(state)


async def test_the_server_says_whether_its_last_requests_were_cut_short() -> None:
    finished: list[bool] = []

    class Recording(compat.Server):
        def tasks_finished(self, *, cut_short: bool) -> None:
            finished.append(cut_short)

    server = Recording(uvicorn.Config(app=lambda scope, receive, send: None))
    server.servers = []
    await server._wait_tasks_to_complete()
    server.server_state.connections.add(object())  # type: ignore[arg-type]  # never closes
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(server._wait_tasks_to_complete(), timeout=0.05)

    assert finished == [False, True]


def test_pydantic_settings_sources_still_take_the_state_a_forwarding_source_passes_on() -> None:
    for name in ("_set_current_state", "_set_settings_sources_data"):
        assert callable(getattr(PydanticBaseSettingsSource, name, None)), (
            f"pydantic-settings {version('pydantic-settings')} moved {name}"
        )
    for name in ("_set_current_state", "_set_settings_sources_data", "get_field_value"):
        assert name in vars(compat.ForwardingSource)
