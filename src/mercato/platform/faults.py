"""Fault injection for alert drills: make requests fail or slow down on purpose.

Exists only when ``MERCATO_FAULT_INJECTION=true`` (the production profile refuses that
setting): then ``PUT /_faults`` (staff only) sets a fault, ``GET /_faults`` shows it and
``DELETE /_faults`` clears it. While a fault is set, that share of requests (``ratio``) first
waits ``delay_ms`` and then, if ``status`` is given, is answered with that status as a problem
(``code: injected_fault``) without reaching the application. Probes, ``/metrics`` and
``/_faults`` itself are never affected, so the process stays scrapeable and controllable.

The switch is per process: drill against a server with one worker process.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import asdict, dataclass
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mercato.platform.deps import StaffUser
from mercato.platform.error_codes import ErrorCode

log = logging.getLogger("mercato.faults")

EXEMPT = ("/_faults", "/metrics", "/livez", "/readyz", "/startupz")


@dataclass
class Fault:
    status: int | None = None
    ratio: float = 1.0
    delay_ms: int = 0


class FaultIn(BaseModel):
    """A fault to inject: answer ``status`` and/or wait ``delay_ms`` for a share of requests."""

    model_config = ConfigDict(extra="forbid")

    status: Literal[500, 502, 503, 504] | None = None
    ratio: Annotated[float, Field(gt=0, le=1)] = 1.0
    delay_ms: Annotated[int, Field(ge=0, le=30_000)] = 0


class FaultInjector:
    """The fault currently set in this process, if any."""

    def __init__(self) -> None:
        self.fault: Fault | None = None

    def hit(self) -> Fault | None:
        """The fault to apply to the next request, if it is one of the unlucky share."""
        fault = self.fault
        if fault is None or (fault.ratio < 1.0 and random.random() >= fault.ratio):
            return None
        return fault


class FaultInjectionMiddleware:
    """Applies the injected fault (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self.injector.hit() if scope["type"] == "http" else None
        if fault is None or scope["path"].startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.status is None:
            await self.app(scope, receive, send)
            return
        body = orjson.dumps(
            {
                "type": "https://mercato.dev/problems/injected_fault",
                "title": "Injected fault",
                "status": fault.status,
                "detail": "This error was injected on purpose (MERCATO_FAULT_INJECTION).",
                "code": ErrorCode.INJECTED_FAULT,
                "instance": scope["path"],
                "request_id": scope.get("state", {}).get("request_id"),
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": fault.status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def install(app: FastAPI) -> None:
    """Add the fault switch (``/_faults``) and the middleware that applies its fault."""
    app.state.faults = FaultInjector()
    app.include_router(router)
    app.add_middleware(FaultInjectionMiddleware, injector=app.state.faults)


router = APIRouter(prefix="/_faults", tags=["faults"], include_in_schema=False)


def _injector(request: Request) -> FaultInjector:
    injector: FaultInjector = request.app.state.faults
    return injector


def _current(injector: FaultInjector) -> Response:
    body = {"fault": asdict(injector.fault) if injector.fault else None}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("")
async def show_fault(request: Request, staff: StaffUser) -> Response:
    """The fault currently injected, if any."""
    return _current(_injector(request))


@router.put("")
async def set_fault(request: Request, fault: FaultIn, staff: StaffUser) -> Response:
    """Inject a fault into every request but probes, /metrics and this switch."""
    injector = _injector(request)
    injector.fault = Fault(**fault.model_dump())
    log.warning("fault injected by %s: %s", staff.user_id, injector.fault)
    return _current(injector)


@router.delete("", status_code=204)
async def clear_fault(request: Request, staff: StaffUser) -> Response:
    """Stop injecting faults."""
    _injector(request).fault = None
    log.warning("fault cleared by %s", staff.user_id)
    return Response(status_code=204)
