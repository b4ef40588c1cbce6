"""Kubernetes-style probes: /livez (process alive), /readyz (can serve), /startupz (started)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

router = APIRouter(tags=["health"], include_in_schema=True)

Check = Callable[[], Awaitable[None]]


def _answer(ok: bool, checks: dict[str, str]) -> Response:
    body = {"status": "ok" if ok else "failing", "checks": checks}
    return Response(orjson.dumps(body), 200 if ok else 503, media_type="application/json")


async def _run(checks: dict[str, Check]) -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await check()
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"failing: {type(exc).__name__}"
    return all(v == "ok" for v in results.values()), results


@router.get("/livez")
async def livez() -> Response:
    """The process and its event loop are alive (no dependency is checked)."""
    return _answer(True, {"event_loop": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """The process should receive traffic: started, not draining, database reachable."""
    state = request.app.state
    if getattr(state, "draining", False):
        return _answer(False, {"draining": "failing: shutting down"})
    ok, checks = await _run(state.readiness_checks)
    return _answer(ok, checks)


@router.get("/startupz")
async def startupz(request: Request) -> Response:
    """Start-up has completed (settings valid, database reachable)."""
    started = bool(getattr(request.app.state, "started", False))
    return _answer(started, {"started": "ok" if started else "failing: starting"})
