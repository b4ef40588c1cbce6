"""FastAPI routes whose held requests are answered by a raw ASGI app, and routes whose
well-formed requests are answered without FastAPI's dependency resolution.

A long poll or an event stream holds its connection for minutes, and everything its request
keeps alive costs memory for as long (``bench/realtime.py`` measures it). FastAPI's request
handling keeps a ``Request``, its parsed headers and query, the solved dependencies and two exit
stacks alive until the response is complete; a held response needs none of them.

A :class:`HeldRoute` is an ordinary :class:`~fastapi.routing.APIRoute`: FastAPI documents it
from its endpoint (parameters, responses, security) and validates its input. Before FastAPI's
handler runs, the route asks ``hold`` about the request: ``hold`` parses it with the same
Pydantic types the endpoint declares and returns the ASGI app that answers it (a held
response), or None to let FastAPI's handler call the endpoint, which answers invalid input with
the usual 422 naming the field. An endpoint hands a held response back to FastAPI wrapped in a
:class:`Handoff`, so both ways answer alike.

A :class:`DirectRoute` (made by :func:`answered_directly`) is the same idea for a busy command:
its ``direct`` function reads the request with the same Pydantic types the endpoint declares
and answers it, or returns None to let FastAPI's handler answer (invalid input included, so
refusals and their order stay FastAPI's). The body it read is kept on the ``Request``, which
FastAPI's handler reads again. Errors it raises go to the same exception handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Hold = Callable[[Scope], ASGIApp | None]


class HeldRoute(APIRoute):
    """An API route whose ``hold`` may answer a request before FastAPI's handler does."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, hold: Hold, **kwargs: Any):
        super().__init__(path, endpoint, **kwargs)
        self.hold = hold

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # In place of the route's handle rather than around it: a held request keeps every
        # frame it passes alive while it waits.
        held = self.hold(scope) if scope["method"] in (self.methods or ()) else None
        if held is None:
            await super().handle(scope, receive, send)  # FastAPI's handler and its validation
        else:
            await held(scope, receive, send)


class Handoff(Response):
    """An endpoint's answer that hands the request to a raw ASGI app (a held response).

    Subclasses name the media type the operation is documented with.
    """

    def __init__(self, app: ASGIApp) -> None:
        super().__init__()
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class EventStreamHandoff(Handoff):
    """A held ``text/event-stream`` response."""

    media_type = "text/event-stream"


Direct = Callable[[Request], Awaitable[Response | None]]


class DirectRoute(APIRoute):
    """An API route whose ``direct`` answers a well-formed request before FastAPI's handler."""

    direct: Direct

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # FastAPI builds the handler once per route (and per inclusion of its router)
        documented = super().get_route_handler()
        direct = self.direct

        async def handler(request: Request) -> Response:
            answer = await direct(request)
            return await documented(request) if answer is None else answer

        return handler


def answered_directly(direct: Direct) -> type[APIRoute]:
    """A route class whose requests ``direct`` answers when it can (see :class:`DirectRoute`)."""
    return cast(
        type[APIRoute], type("DirectRoute", (DirectRoute,), {"direct": staticmethod(direct)})
    )
