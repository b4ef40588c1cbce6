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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

DECLINED = "mercato.in_front_declined"
"""Set in a request's scope when its answer in front of the routes (:class:`InFrontOfRoutes`)
left it to the route's handler."""


class DirectRoute(APIRoute):
    """An API route whose ``direct`` answers a well-formed request before FastAPI's handler."""

    direct: Direct

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # FastAPI builds the handler once per route (and per inclusion of its router)
        documented = super().get_route_handler()
        direct = self.direct

        async def handler(request: Request) -> Response:
            if request.scope.get(DECLINED):  # asked already, in front of the routes
                return await documented(request)
            answer = await direct(request)
            return await documented(request) if answer is None else answer

        return handler


def in_front(direct: Direct) -> InFront:
    """``direct`` as an answer made in front of the routes (:class:`InFrontOfRoutes`)."""

    async def answer(scope: Scope, receive: Receive) -> ASGIApp | None:
        return await direct(Request(scope, receive))

    return answer


def answered_directly(direct: Direct) -> type[APIRoute]:
    """A route class whose requests ``direct`` answers when it can (see :class:`DirectRoute`)."""
    return cast(
        type[APIRoute], type("DirectRoute", (DirectRoute,), {"direct": staticmethod(direct)})
    )


InFront = Callable[[Scope, Receive], Awaitable[ASGIApp | None]]
"""The answer to a request of one route, made in front of FastAPI's routing from the scope
(``path_params`` and ``route`` set as the router would) and ``receive``, or None to leave the
request to the route's handler."""


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


class _FrontRoute:
    """One route answered in front: its template ``<prefix>{param}<suffix>``, its methods, and
    the paths of that shape an earlier route serves (``/v1/products/search``)."""

    def __init__(self, contexts: list[RouteContext], index: int, answer: InFront) -> None:
        context = contexts[index]
        self.route = context.original_route
        self.methods = frozenset(context.methods or ())
        self.answer = answer
        template = str(context.path_format)
        self.prefix, _, rest = template.partition("{")
        self.param, _, self.suffix = rest.partition("}")
        if not self.param or "{" in self.suffix or "/" in self.param:
            raise ValueError(f"{template}: not a route of one parameter")
        self.segments = template.split("/")
        self.position = self.prefix.count("/")
        self.served_before = frozenset(
            path for c in contexts[:index] if (path := self._shadowing(c)) is not None
        )

    def _shadowing(self, earlier: RouteContext) -> str | None:
        """The literal path of an earlier route of the same shape; a ValueError for one whose
        template would take every request of this route."""
        if not self.methods & frozenset(earlier.methods or ()):
            return None  # the router goes on past a route for other methods
        path = str(earlier.path_format or earlier.path or "")
        theirs = path.split("/")
        if len(theirs) != len(self.segments):
            return None
        for i, (mine, other) in enumerate(zip(self.segments, theirs, strict=True)):
            if i != self.position and mine != other and "{" not in other:
                return None
        if "{" in path:
            raise ValueError(f"{path} would also match {self.prefix}{{{self.param}}}{self.suffix}")
        return path

    def value(self, scope: Scope) -> str | None:
        """The parameter, when this request is one of the route's."""
        path: str = scope["path"]
        if (
            scope["method"] in self.methods
            and path.startswith(self.prefix)
            and path.endswith(self.suffix)
            and path not in self.served_before
        ):
            value = path[len(self.prefix) : len(path) - len(self.suffix) or None]
            if value and "/" not in value:
                return value
        return None


class InFrontOfRoutes:
    """Answers well-formed requests of a few busy routes in front of FastAPI's routing.

    The busiest requests of a shop pay for every layer they pass: FastAPI's exception and
    exit-stack middleware, matching against every route, the route's request handling and
    dependency resolution cost a product read more CPU than its query (``bench/RESULTS.md``).
    This layer sits innermost, after every middleware of mercato's own (so a request is named,
    counted, logged, traced, gated by the lifecycle and kept idempotent as before), and hands a
    request of one of ``answers``' routes (keyed by endpoint) to its answer, with its path
    parameter and route in the scope as the router would set them. The answer validates the
    request with the endpoint's own types and answers it, or returns None to let the route's
    handler answer (bad input and its problem+json naming the field, other callers' views),
    with any body it read given again. Errors it raises are answered by the application's own
    handlers, as the route's would be; one without a handler of its own goes on to the
    outermost one, as it would from the route.

    The route's template names the request in metrics, logs and traces (``scope["route"]``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        answers: dict[Callable[..., Any], InFront],
    ) -> None:
        self.app = app
        contexts = list(iter_route_contexts(routes))
        self.front = tuple(
            _FrontRoute(contexts, i, answers[c.endpoint])
            for i, c in enumerate(contexts)
            if c.endpoint in answers
        )
        if len(self.front) != len(answers):
            raise ValueError("an endpoint to answer in front has no route")

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http":
            for front in self.front:
                value = front.value(scope)
                if value is not None:
                    return self._answer(front, value, scope, receive, send)
        # handed on, not awaited here: no frame of this layer stays alive while it runs
        return self.app(scope, receive, send)

    async def _answer(
        self, front: _FrontRoute, value: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        scope["route"] = front.route
        scope["path_params"] = {front.param: value}
        received = _Received(receive)
        try:
            answer = await front.answer(scope, received)
        except Exception as exc:
            if not await problems.send_handled_error(scope, received.again(), send, exc):
                raise
            return
        if answer is None:
            scope[DECLINED] = True
            await self.app(scope, received.again(), send)
        else:
            await answer(scope, receive, send)


class _Received:
    """``receive``, keeping what it returned, to give it again to the route's handler."""

    __slots__ = ("messages", "receive")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.messages: list[Message] = []

    async def __call__(self) -> Message:
        message = await self.receive()
        self.messages.append(message)
        return message

    def again(self) -> Receive:
        pending = list(self.messages)
        receive = self.receive

        async def replayed() -> Message:
            return pending.pop(0) if pending else await receive()

        return replayed
