"""Kubernetes probes, cheap and without side effects.

* ``/livez``: the process and its event loop answer. No dependency is checked, so a database
  outage never makes Kubernetes restart every replica at once.
* ``/readyz``: the process should receive traffic: start-up done, not draining, database
  reachable. 503 names the failing check.
* ``/startupz``: start-up completed: settings valid, database reachable, schema at the migration
  this build expects. 503 names the failing check while start-up is retried.

Bodies are ``{"status": "ok" | "failing", "checks": {name: "ok" | "failing: why"}}``. Request
metrics should leave these paths out (``lifecycle.PROBE_PATHS``); probes are hit every few
seconds by every kubelet and would drown real traffic.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from mercato.platform.appstate import platform_state
from mercato.platform.lifecycle import Lifecycle
from mercato.platform.metrics import Metrics

router = APIRouter(tags=["health"], include_in_schema=True)

_NO_CACHE = {"Cache-Control": "no-store"}


def _answer(ok: bool, checks: dict[str, str]) -> Response:
    body = {"status": "ok" if ok else "failing", "checks": checks}
    return Response(
        orjson.dumps(body), 200 if ok else 503, headers=_NO_CACHE, media_type="application/json"
    )


@router.get("/livez")
async def livez() -> Response:
    """The process and its event loop are alive (no dependency is checked)."""
    return _answer(True, {"event_loop": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """The process should receive traffic: started, not draining, database reachable."""
    return _answer(*await platform_state(request).lifecycle.readiness())


@router.get("/startupz")
async def startupz(request: Request) -> Response:
    """Start-up has completed: settings valid, database reachable, schema migrated."""
    lifecycle = platform_state(request).lifecycle
    return _answer(lifecycle.started, {"settings": "ok", **lifecycle.startup_results})


def gauge_readiness(app: FastAPI, metrics: Metrics) -> None:
    """Set ``mercato_ready`` at every scrape as /readyz would answer then (for the flapping
    alert)."""

    async def sample() -> None:
        lifecycle: Lifecycle | None = getattr(app.state, "lifecycle", None)
        ready = False
        if lifecycle is not None:
            ready, _ = await lifecycle.readiness()
        metrics.ready.set(1 if ready else 0)

    metrics.on_scrape(sample)
