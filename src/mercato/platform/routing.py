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

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, cast

from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from mercato.platform import problems

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


Read = Callable[[Scope, str], Awaitable[ASGIApp | None]]
"""The answer to a GET of a route ``<prefix>{param}``, given the scope and the parameter, or
None to leave it to the route's FastAPI handler."""


class Answer:
    """A response complete before it is sent: its status, headers and body in two messages."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class DirectGet:
    """Answers well-formed GETs of one route ``<prefix>{param}`` in front of FastAPI's routing.

    The busiest read of a shop pays for every layer it passes: FastAPI's exception and exit-stack
    middleware, matching against every route, the route's request handling and dependency
    resolution cost more CPU than the read's query (``bench/RESULTS.md``). This layer sits
    innermost, after every middleware of mercato's own (so the request is named, counted,
    logged, traced and gated by the lifecycle as before), and hands ``read`` the parameter of a
    GET whose path the route would match; ``read`` validates it with the endpoint's own types
    and answers, or returns None to let the route's handler answer (bad input and its
    problem+json naming the field, other callers' views). Errors ``read`` raises are answered by
    the application's own handlers, as the route's would be; one without a handler of its own
    goes on to the outermost one, as it would from the route.

    The route's template names the request in metrics, logs and traces (``scope["route"]``).
    Paths under ``prefix`` that an earlier route serves (``/v1/products/search``) are handed on.
    """

    def __init__(
        self, app: ASGIApp, *, routes: Sequence[BaseRoute], endpoint: Callable[..., Any], read: Read
    ) -> None:
        self.app = app
        self.read = read
        contexts = list(iter_route_contexts(routes))
        index = next(i for i, c in enumerate(contexts) if c.endpoint is endpoint)
        self.route = contexts[index].original_route
        template = str(contexts[index].path_format)
        self.prefix, _, param = template.partition("{")
        if not param.endswith("}") or "/" in param or "{" in param:
            raise ValueError(f"{template}: not a route of one trailing parameter")
        self.param = param[:-1]
        self.served_before = self._served_before(contexts[:index])

    def _served_before(self, earlier: list[RouteContext]) -> frozenset[str]:
        """The paths under the prefix that an earlier route answers (literal ones only)."""
        paths = set()
        for context in earlier:
            path = str(context.path_format or context.path or "")
            rest = path[len(self.prefix) :] if path.startswith(self.prefix) else "/"
            if "/" in rest or not rest:
                continue
            if "{" in rest:
                raise ValueError(f"{path} would also match {self.prefix}{{{self.param}}}")
            paths.add(path)
        return frozenset(paths)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(self.prefix) and path not in self.served_before:
                value = path[len(self.prefix) :]
                if value and "/" not in value:
                    return self._answer(scope, receive, send, value)
        # handed on, not awaited here: no frame of this layer stays alive while it runs
        return self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, value: str) -> None:
        scope["route"] = self.route
        scope["path_params"] = {self.param: value}
        try:
            answer = await self.read(scope, value)
        except Exception as exc:
            if not await problems.send_handled_error(scope, receive, send, exc):
                raise
            return
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await answer(scope, receive, send)
