"""Every place mercato relies on a library's private parts, gathered in one module.

Each is a measured shortcut or a hook the library offers no public way to reach. An upgrade
may change them without notice, so ``tests/unit/test_compat.py`` checks each against the
installed version and fails loudly, naming the library, when one moved.

* prometheus_client: a histogram's ``_upper_bounds``, ``_buckets`` and ``_sum``
  (:func:`observe_many`: one update per bucket for a batch of observations).
* uvicorn: ``Server._wait_tasks_to_complete``, the step that cancels requests still running
  at the grace deadline (:class:`Server`), and a connection's ``cycle``, None until its
  request arrives (:func:`awaiting_request`).
* pydantic-settings: ``PydanticBaseSettingsSource._set_current_state`` and
  ``_set_settings_sources_data``, which a source wrapping another must pass on
  (:class:`ForwardingSource`).
"""

from __future__ import annotations

import asyncio
import bisect
from typing import Any

import uvicorn
from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource
from uvicorn.server import ServerState


def observe_many(histogram: Any, values: list[float]) -> None:
    """Observe many values in one update per bucket (not three memory-mapped writes each)."""
    try:
        bounds, buckets, total = histogram._upper_bounds, histogram._buckets, histogram._sum
    except AttributeError:  # another prometheus-client layout: the public, slower way
        for value in values:
            histogram.observe(value)
        return
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect.bisect_left(bounds, value)] += 1
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)
    total.inc(sum(values))


def awaiting_request(state: ServerState) -> bool:
    """Whether a connection the server accepted has not sent its request yet."""
    return any(getattr(c, "cycle", 1) is None for c in state.connections)


class Server(uvicorn.Server):
    """uvicorn's server, telling :meth:`tasks_finished` how its last requests ended."""

    async def _wait_tasks_to_complete(self) -> None:
        try:
            await super()._wait_tasks_to_complete()
        except asyncio.CancelledError:
            self.tasks_finished(cut_short=True)  # the grace deadline passed
            raise
        self.tasks_finished(cut_short=False)

    def tasks_finished(self, *, cut_short: bool) -> None:
        """The requests running at shutdown have ended, or were cancelled (``cut_short``)."""


class ForwardingSource(PydanticBaseSettingsSource):
    """A settings source that wraps ``inner`` and passes on what pydantic-settings tells it."""

    def __init__(self, inner: PydanticBaseSettingsSource) -> None:
        super().__init__(inner.settings_cls)
        self.inner = inner

    def _set_current_state(self, state: dict[str, Any]) -> None:
        self.inner._set_current_state(state)

    def _set_settings_sources_data(self, states: dict[str, dict[str, Any]]) -> None:
        self.inner._set_settings_sources_data(states)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return self.inner()
