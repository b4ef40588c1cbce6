"""Which requests :class:`~mercato.platform.routing.InFrontOfRoutes` answers in front of FastAPI's
routing, and that everything else (other paths, earlier routes, bad input, errors) is answered
as the route would answer it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope

from mercato.kernel.errors import NotFound
from mercato.platform import problems
from mercato.platform.routing import DECLINED, Answer, InFrontOfRoutes

pytestmark = pytest.mark.anyio

router = APIRouter(prefix="/v1")


@router.get("/items/special")
async def special_item() -> dict[str, str]:
    return {"answered_by": "special"}


@router.get("/items/{item_id}")
async def read_item(item_id: str) -> dict[str, str]:
    return {"answered_by": "route", "item_id": item_id}


@router.get("/items/{item_id}/parts")
async def item_parts(item_id: str) -> list[str]:
    return [item_id]


class Note(BaseModel):
    text: str


@router.post("/items/{item_id}/notes")
async def add_note(item_id: str, note: Note) -> dict[str, str]:
    return {"answered_by": "route", "item_id": item_id, "text": note.text}


async def add_note_in_front(scope: Scope, receive: Receive) -> ASGIApp | None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if b"route" in body:
        return None  # left to the route, which must get the body again
    text = f"in front {scope['path_params']['item_id']} {body.decode()}"
    return Answer(200, [(b"content-type", b"text/plain")], text.encode())


async def read_in_front(scope: Scope, receive: Receive) -> ASGIApp | None:
    item_id = scope["path_params"]["item_id"]
    if item_id == "left-to-the-route":
        return None
    if item_id == "missing":
        raise NotFound("missing", "no such item")
    if item_id == "broken":
        raise RuntimeError("a bug")
    return Answer(200, [(b"content-type", b"text/plain")], f"direct {item_id}".encode())


ANSWERS = {read_item: read_in_front, add_note: add_note_in_front}


def app() -> FastAPI:
    application = FastAPI()
    problems.install(application)
    application.include_router(router)
    application.add_middleware(InFrontOfRoutes, routes=application.routes, answers=ANSWERS)
    return application


async def get(path: str, method: str = "GET", body: bytes | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = {"content-type": "application/json"} if body else {}
        return await client.request(method, path, content=body, headers=headers)


async def test_a_get_of_the_route_is_answered_in_front_of_the_routes() -> None:
    answer = await get("/v1/items/42")

    assert (answer.status_code, answer.text) == (200, "direct 42")
    assert answer.headers["content-type"] == "text/plain"


async def test_the_request_carries_the_route_it_stands_for() -> None:
    seen: dict[str, Any] = {}
    application = app()

    async def remember(scope: Scope, receive: Any, send: Any) -> None:
        scope["state"] = {}
        await application(scope, receive, send)
        seen.update(scope)

    transport = httpx.ASGITransport(app=remember)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/v1/items/42")

    assert seen["route"].path_format == "/v1/items/{item_id}"
    assert seen["route"].endpoint is read_item
    assert seen["path_params"] == {"item_id": "42"}


async def test_a_path_an_earlier_route_serves_goes_to_that_route() -> None:
    assert (await get("/v1/items/special")).json() == {"answered_by": "special"}


@pytest.mark.parametrize("path", ["/v1/items/42/parts", "/v1/items/", "/v1/itemsx"])
async def test_other_paths_go_to_the_routes(path: str) -> None:
    answer = await get(path)

    assert answer.text != "direct 42"
    assert not answer.text.startswith("direct")


async def test_other_methods_go_to_the_routes() -> None:
    answer = await get("/v1/items/42", method="POST")

    assert answer.status_code == 405


async def test_a_request_the_read_leaves_is_answered_by_the_route() -> None:
    answer = await get("/v1/items/left-to-the-route")

    assert answer.json() == {"answered_by": "route", "item_id": "left-to-the-route"}


async def test_a_domain_error_is_answered_by_the_applications_handler() -> None:
    answer = await get("/v1/items/missing")

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "missing"


async def test_an_unexpected_error_goes_on_to_the_outermost_handler() -> None:
    answer = await get("/v1/items/broken")

    assert answer.status_code == 500
    assert answer.json()["code"] == "internal_error"


def test_a_template_that_would_shadow_the_route_is_refused() -> None:
    shadowing = APIRouter()

    @shadowing.get("/v1/items/{other}")
    async def first(other: str) -> None: ...

    application = FastAPI()
    application.include_router(shadowing)
    application.include_router(router)

    with pytest.raises(ValueError, match="would also match"):
        InFrontOfRoutes(application, routes=application.routes, answers=ANSWERS)


async def test_a_route_with_a_parameter_inside_its_path_is_answered_in_front() -> None:
    answer = await get("/v1/items/42/notes", method="POST", body=b'{"text": "hi"}')

    assert answer.text == 'in front 42 {"text": "hi"}'


async def test_the_body_an_answer_read_is_given_again_to_the_route() -> None:
    answer = await get("/v1/items/42/notes", method="POST", body=b'{"text": "route"}')

    assert answer.json() == {"answered_by": "route", "item_id": "42", "text": "route"}


async def test_a_declined_request_is_marked_for_the_routes_own_direct_answer() -> None:
    seen: dict[str, Any] = {}
    application = app()

    async def remember(scope: Scope, receive: Any, send: Any) -> None:
        await application(scope, receive, send)
        seen.update(scope)

    transport = httpx.ASGITransport(app=remember)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/v1/items/left-to-the-route")

    assert seen[DECLINED] is True


def test_an_endpoint_without_a_route_is_refused() -> None:
    async def elsewhere() -> None: ...

    with pytest.raises(ValueError, match="no route"):
        InFrontOfRoutes(app(), routes=app().routes, answers={elsewhere: read_in_front})
