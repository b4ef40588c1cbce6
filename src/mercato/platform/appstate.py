"""The platform's part of ``app.state``: declared and typed, read through :func:`platform_state`.

Starlette gives every application an attribute bag (``app.state``). mercato replaces it, once,
in ``create_app``, with a subclass that declares every attribute it holds (the application's
:class:`~mercato.web.state.AppState` adds the business services), so a reader names a typed
attribute instead of fetching ``Any``. Being a ``State``, it still takes the attributes the
platform's installers set on it.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import State
from starlette.requests import HTTPConnection

from mercato.platform.lifecycle import Lifecycle
from mercato.platform.metrics import Metrics
from mercato.platform.notify import Notifier
from mercato.platform.security import Authenticator
from mercato.platform.switches import Switches


class PlatformState(State):
    """What middleware and dependencies of the platform read from the application."""

    auth: Authenticator  # the one place a token becomes a principal
    lifecycle: Lifecycle  # starting, serving, draining (probes, the lifecycle middleware)
    switches: Switches  # kill switches
    metrics: Metrics
    notifier: Notifier  # the hub of clients waiting for order changes

    def __init__(
        self,
        *,
        auth: Authenticator,
        lifecycle: Lifecycle,
        switches: Switches,
        metrics: Metrics,
        notifier: Notifier,
    ) -> None:
        super().__init__()
        self.auth = auth
        self.lifecycle = lifecycle
        self.switches = switches
        self.metrics = metrics
        self.notifier = notifier


def platform_state(app: Any) -> PlatformState:
    """The typed state of ``app`` (an application, or a request or connection to one)."""
    if isinstance(app, HTTPConnection):
        app = app.app
    state = app.state
    if not isinstance(state, PlatformState):
        raise TypeError(f"{type(app).__name__}.state was not set by mercato's create_app")
    return state
