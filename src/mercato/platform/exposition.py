"""The Prometheus exposition: ``GET /metrics`` on the API, or alone on the metrics port.

``/metrics`` is a route of the API when ``MERCATO_METRICS_PORT`` is 0; otherwise only requests
that arrive on that port (a listener ``mercato serve`` opens) reach it, through
:class:`MetricsPortApp`, and the API answers 404. ``mercato worker`` serves the port alone.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mercato.platform.appstate import platform_state
from mercato.platform.error_codes import ErrorCode
from mercato.platform.metrics import Metrics
from mercato.platform.problems import problem

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus exposition of every metric (all worker processes added up)."""
    return await _exposition(platform_state(request).metrics)


async def _exposition(metrics: Metrics) -> Response:
    body, content_type = await metrics.render()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


METRICS_ROUTE = router.routes[0]  # the route a scrape on the metrics port is counted under


class MetricsPortApp:
    """What the metrics port serves: ``GET /metrics`` and nothing else (404 or 405 as
    problem+json). The API server hands it the requests that arrive on that port; ``mercato
    worker`` serves it alone."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan and no websockets here
        if scope["path"] != "/metrics":
            response = problem(404, ErrorCode.NOT_FOUND, "This port serves GET /metrics only.")
        elif scope["method"] not in ("GET", "HEAD"):
            response = problem(
                405,
                ErrorCode.METHOD_NOT_ALLOWED,
                "GET /metrics only.",
                headers={"Allow": "GET, HEAD"},
            )
        else:
            scope["route"] = METRICS_ROUTE
            response = await _exposition(self.metrics)
        await response(scope, receive, send)


def install(app: FastAPI, *, port: int) -> None:
    """Serve ``/metrics`` on the API unless it has a port of its own."""
    if not port:
        app.include_router(router)
