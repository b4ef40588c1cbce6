"""Bad input on every endpoint that takes input: always a problem+json, never a 500, and the
database exactly as it was before the request.

Request bodies are checked per endpoint from one table (``BODIES``): malformed JSON, bodies that
are not objects, unknown, missing and wrongly typed fields, and strings of a megabyte. Every text
input of every route (body fields, query and path parameters, found in the OpenAPI document, so
a new one is covered without being listed) must refuse control characters, naming it. The rest
covers the business rules a well-formed request can still break.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from mercato.kernel.money import MAX_AMOUNT
from mercato.kernel.values import forbidden_character
from tests.e2e.helpers import (
    ADDRESS,
    ROUTES,
    SUCCESS_CARD,
    WORLD_WEBHOOK_URL,
    Access,
    RouteCase,
    World,
    assert_problem,
    build_world,
    create_product,
    draft,
    routes,
    running_app,
    shared_world,
)

pytestmark = pytest.mark.anyio

UNKNOWN = "01900000-0000-7000-8000-000000000000"
MEGABYTE = "x" * 1_048_576
BIG_LIMIT = 4 * 1_048_576


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(database_url) as application:
        yield application


@pytest.fixture(scope="module")
async def big_app(database_url: str) -> AsyncIterator[FastAPI]:
    """An application that accepts bodies of several megabytes."""
    async with running_app(database_url, max_body_bytes=BIG_LIMIT) as application:
        yield application


@pytest.fixture
async def big_client(big_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=big_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
        yield http


@pytest.fixture(scope="module")
async def world(app: FastAPI) -> World:
    """Shared by the tests here that change nothing (each refusal proves it); tests that change
    data build their own."""
    return await shared_world(app)


@pytest.fixture(scope="module")
async def big_world(big_app: FastAPI) -> World:
    return await shared_world(big_app)


def caller(case: RouteCase, world: World) -> dict[str, str]:
    """Headers of a caller the route lets through to validation."""
    if case.access is Access.PUBLIC:
        return {}
    if case.access in (Access.STAFF, Access.ORDER_STAFF):
        return world.staff.auth
    return world.owner.auth


def route(method: str, path: str) -> RouteCase:
    return next(r for r in ROUTES if r.method == method and r.path == path)


# -- one table of every endpoint with a body --------------------------------------------------


@dataclass(frozen=True)
class BodyCase:
    route: RouteCase
    valid: Callable[[World], dict[str, Any]]
    ok: int  # the answer to the valid body (ship answers 409: the order is a draft)
    required: tuple[str, ...]
    wrong: tuple[tuple[dict[str, Any], str], ...]  # a change to the valid body, the bad field
    strings: tuple[str, ...]  # fields that take text (or, for quantities, a number)

    @property
    def id(self) -> str:
        return self.route.id


_ADDRESS_FULL = {**ADDRESS, "name": "Ada", "region": "Berlin"}
_O = "/v1/orders/{order_id}"

BODIES = (
    BodyCase(
        route("POST", "/v1/customers"),
        lambda w: {
            "email": f"new-{w.order['id']}@example.com",
            "password": "long enough",
            "name": "N",
        },
        201,
        ("email", "password", "name"),
        (({"email": 5}, "email"), ({"password": ["x"]}, "password"), ({"name": None}, "name")),
        ("email", "password", "name"),
    ),
    BodyCase(
        route("POST", "/v1/auth/token"),
        lambda w: {"email": w.owner.email, "password": "correct horse battery"},
        200,
        ("email", "password"),
        (({"email": {}}, "email"), ({"password": 12345678}, "password")),
        ("email", "password"),
    ),
    BodyCase(
        route("POST", "/v1/products"),
        lambda w: {
            "sku": f"BAD-{w.order['id'][-12:]}".upper(),
            "name": "Name",
            "description": "",
            "price": {"amount": 100, "currency": "EUR"},
            "weight_grams": 10,
            "initial_stock": 1,
        },
        201,
        ("sku", "name", "price"),
        (
            ({"sku": 1}, "sku"),
            ({"price": {"amount": "10", "currency": "EUR"}}, "price.amount"),
            ({"price": {"amount": 1.5, "currency": "EUR"}}, "price.amount"),
            ({"price": {"amount": -1, "currency": "EUR"}}, "price.amount"),
            ({"price": {"amount": MAX_AMOUNT + 1, "currency": "EUR"}}, "price.amount"),
            ({"price": {"amount": 1}}, "price.currency"),
            ({"price": {"amount": 1, "currency": "EUR", "tax": 1}}, "price.tax"),
            ({"price": 1000}, "price"),
            ({"weight_grams": "500"}, "weight_grams"),
            ({"initial_stock": True}, "initial_stock"),
            ({"initial_stock": -1}, "initial_stock"),
            ({"name": ""}, "name"),
        ),
        ("sku", "name", "description", "price.currency"),
    ),
    BodyCase(
        route("PATCH", "/v1/products/{product_id}"),
        lambda w: {
            "name": "Renamed",
            "description": "d",
            "price": {"amount": 1500, "currency": "EUR"},
            "weight_grams": 1,
            "active": True,
        },
        200,
        (),
        (
            ({"active": "yes"}, "active"),
            ({"active": 1}, "active"),
            ({"weight_grams": 1.5}, "weight_grams"),  # 1.0 is a whole number (JSON Schema)
            ({"name": ""}, "name"),
            ({"price": {"amount": -1, "currency": "EUR"}}, "price.amount"),
        ),
        ("name", "description", "price.currency"),
    ),
    BodyCase(
        route("POST", "/v1/products/{product_id}/stock-adjustments"),
        lambda w: {"delta": 3, "reason": "found in the back"},
        201,
        ("delta", "reason"),
        (({"delta": "5"}, "delta"), ({"delta": 2.5}, "delta"), ({"reason": 5}, "reason")),
        ("reason",),
    ),
    BodyCase(
        route("POST", "/v1/orders"),
        lambda w: {
            "currency": "EUR",
            "lines": [{"product_id": w.product["id"], "quantity": 1}],
            "shipping_address": dict(_ADDRESS_FULL),
            "billing_address": dict(_ADDRESS_FULL),
            "discount_code": "WELCOME10",
        },
        201,
        (),
        (
            ({"lines": {}}, "lines"),
            ({"lines": [{"product_id": 1, "quantity": 1}]}, "lines[0].product_id"),
            ({"lines": [{"product_id": UNKNOWN}]}, "lines[0].quantity"),
            ({"lines": [{"product_id": UNKNOWN, "quantity": 1, "x": 1}]}, "lines[0].x"),
            ({"shipping_address": "Berlin"}, "shipping_address"),
            ({"shipping_address": {"city": "B", "country": "DE"}}, "shipping_address.street"),
            ({"billing_address": {**ADDRESS, "country": "DEU"}}, "billing_address.country"),
            ({"currency": "EURO"}, "currency"),
            ({"discount_code": 10}, "discount_code"),
        ),
        (
            "currency",
            "discount_code",
            "lines[0].product_id",
            "shipping_address.street",
            "shipping_address.name",
            "billing_address.region",
            "billing_address.postal_code",
        ),
    ),
    BodyCase(
        route("POST", _O + "/lines"),
        lambda w: {"product_id": w.spare["id"], "quantity": 2},
        200,
        ("product_id", "quantity"),
        (({"quantity": "1"}, "quantity"), ({"product_id": None}, "product_id")),
        ("product_id", "quantity"),
    ),
    BodyCase(
        route("PUT", _O + "/lines/{product_id}"),
        lambda w: {"quantity": 3},
        200,
        ("quantity",),
        (({"quantity": 1.5}, "quantity"), ({"quantity": [1]}, "quantity")),
        ("quantity",),
    ),
    BodyCase(
        route("PUT", _O + "/addresses"),
        lambda w: {"shipping_address": _ADDRESS_FULL, "billing_address": ADDRESS},
        200,
        ("shipping_address",),
        (
            ({"shipping_address": []}, "shipping_address"),
            ({"billing_address": {**ADDRESS, "country": 49}}, "billing_address.country"),
            ({"shipping_address": {**ADDRESS, "city": ""}}, "shipping_address.city"),
        ),
        ("shipping_address.street", "shipping_address.city", "billing_address.name"),
    ),
    BodyCase(
        route("PUT", _O + "/discount"),
        lambda w: {"code": "welcome10"},
        200,
        ("code",),
        (({"code": ["WELCOME10"]}, "code"), ({"code": ""}, "code")),
        ("code",),
    ),
    BodyCase(
        route("POST", _O + "/place"),
        lambda w: {"payment_method": "pm_card_visa"},
        200,
        (),  # exactly one of payment_method and card_number: see test_payment_methods
        (
            ({"card_number": 4242424242424242}, "card_number"),
            ({"card_number": "42"}, "card_number"),
            ({"payment_method": ["pm_card_visa"]}, "payment_method"),
        ),
        ("card_number", "payment_method"),
    ),
    BodyCase(
        route("POST", _O + "/ship"),
        lambda w: {"tracking_code": "TRACK-1"},
        409,
        (),
        (({"tracking_code": 1}, "tracking_code"),),
        ("tracking_code",),
    ),
    BodyCase(
        route("POST", _O + "/cancel"),
        lambda w: {"reason": "found it cheaper"},
        200,
        (),
        (({"reason": False}, "reason"),),
        ("reason",),
    ),
    BodyCase(
        route("PUT", "/v1/admin/switches/{name}"),
        lambda w: {"enabled": True, "reason": "bad input check"},
        200,
        ("enabled", "reason"),
        (({"enabled": "maybe"}, "enabled"), ({"reason": ""}, "reason")),
        ("reason",),
    ),
    BodyCase(
        route("POST", "/v1/webhooks"),
        lambda w: {
            "url": WORLD_WEBHOOK_URL,
            "event_types": ["OrderPlaced", "*"],
            "description": "bad input check",
            "enabled": False,
        },
        201,
        ("url", "event_types"),
        (
            ({"url": 5}, "url"),
            ({"event_types": "OrderPlaced"}, "event_types"),
            ({"event_types": [5]}, "event_types[0]"),
            ({"event_types": ["OrderPlaced", 7]}, "event_types[1]"),
            ({"event_types": []}, "event_types"),
            ({"enabled": "yes"}, "enabled"),
            ({"description": ["d"]}, "description"),
        ),
        ("url", "description", "event_types[0]"),
    ),
    BodyCase(
        route("PATCH", "/v1/webhooks/{endpoint_id}"),
        lambda w: {
            "url": "http://127.0.0.1:9/patched",
            "event_types": ["OrderShipped"],
            "description": "patched",
            "enabled": False,
        },
        200,
        (),
        (
            ({"url": ""}, "url"),
            ({"description": 3}, "description"),
            ({"event_types": [None]}, "event_types[0]"),
            ({"enabled": 1}, "enabled"),
        ),
        ("url", "description", "event_types[0]"),
    ),
)


def bodies(*, required: bool = False) -> list[Any]:
    return [pytest.param(b, id=b.id) for b in BODIES if b.required or not required]


async def send(
    client: httpx.AsyncClient,
    case: BodyCase,
    world: World,
    *,
    json: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """The endpoint with a JSON value or raw bytes as its body."""
    all_headers = {**caller(case.route, world), "content-type": "application/json"}
    all_headers.update(headers or {})
    raw = content if content is not None else httpx.Request("POST", "/", json=json).content
    return await client.request(
        case.route.method, case.route.url(world), content=raw, headers=all_headers
    )


def with_value(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the field at ``path`` (``a.b`` or ``a[0].b``) set to ``value``."""
    changed = copy.deepcopy(body)
    parts: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        parts.append(name or int(index))
    target: Any = changed
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value
    return changed


async def test_the_body_table_covers_every_endpoint_that_takes_a_body(app: FastAPI) -> None:
    takes_a_body = set()
    for route in iter_route_contexts(app.routes):
        if getattr(route.original_route, "body_field", None) is not None:
            takes_a_body |= {f"{method} {route.path}" for method in route.methods or ()}
    assert {b.id for b in BODIES} == takes_a_body


async def test_the_database_probe_notices_any_insert_and_any_change_to_watched_rows(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    product, staff = f"/v1/products/{world.product['id']}", world.staff.auth
    changes = (
        client.patch(product, json={"description": "changed"}, headers=staff),
        client.post(
            f"{product}/stock-adjustments", json={"delta": 1, "reason": "r"}, headers=staff
        ),
        client.put(
            f"/v1/orders/{world.order['id']}/lines/{world.product['id']}",
            json={"quantity": 5},
            headers=world.owner.auth,
        ),
        client.post(
            "/v1/customers",
            json={
                "email": f"p-{world.order['id']}@example.com",
                "password": "long enough",
                "name": "P",
            },
        ),
    )
    for change in changes:
        with pytest.raises(AssertionError, match=r"\+\["):
            async with world.unchanged():
                response = await change
        assert response.is_success, response.text


@pytest.mark.parametrize("case", bodies())
async def test_the_valid_body_of_each_endpoint_is_accepted(
    client: httpx.AsyncClient, app: FastAPI, case: BodyCase
) -> None:
    world = await build_world(client, app)
    response = await send(client, case, world, json=case.valid(world))
    assert response.status_code == case.ok, response.text


MALFORMED = (
    b'{"email": ',
    b"{'single': 'quotes'}",
    b'{"trailing": "comma",}',
    b'{"a": 1}}',
    b"nul",
    b'{"text": "\xc3\x28"}',  # invalid UTF-8
    b"[" * 100_000,  # nesting too deep for the parser
    b'{"n": 1' + b"0" * 5000 + b"}",  # an integer too long to convert
)


@pytest.mark.parametrize("case", bodies())
async def test_malformed_json_is_400(
    client: httpx.AsyncClient, world: World, case: BodyCase
) -> None:
    for raw in MALFORMED:
        request = send(client, case, world, content=raw)
        problem = await world.refused(request, 400, "malformed_json")
        assert problem["detail"], raw[:40]


@pytest.mark.parametrize("case", bodies())
async def test_json_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, world: World, case: BodyCase
) -> None:
    for value in ([], [case.valid(world)], "text", 42, True):
        request = send(client, case, world, json=value)
        await world.refused(request, 422, "validation_failed", field="body")


@pytest.mark.parametrize("case", bodies())
async def test_unknown_fields_are_refused_by_name(
    client: httpx.AsyncClient, world: World, case: BodyCase
) -> None:
    body = {**case.valid(world), "is_admin": True, "price_override": 0}
    problem = await world.refused(
        send(client, case, world, json=body), 422, "validation_failed", field="is_admin"
    )
    assert {e["field"] for e in problem["errors"]} == {"is_admin", "price_override"}
    assert {e["in"] for e in problem["errors"]} == {"body"}


@pytest.mark.parametrize("case", bodies(required=True))
async def test_every_missing_field_is_named(
    client: httpx.AsyncClient, world: World, case: BodyCase
) -> None:
    problem = await world.refused(send(client, case, world, json={}), 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == list(case.required)
    assert problem["field"] == case.required[0]
    for missing in case.required:
        body = {k: v for k, v in case.valid(world).items() if k != missing}
        request = send(client, case, world, json=body)
        await world.refused(request, 422, "validation_failed", field=missing)


@pytest.mark.parametrize("case", bodies())
async def test_each_wrongly_typed_field_is_named_and_all_are_listed(
    client: httpx.AsyncClient, world: World, case: BodyCase
) -> None:
    together: dict[str, Any] = {}
    expected = set()
    for change, field in case.wrong:
        body = {**case.valid(world), **change}
        problem = await world.refused(
            send(client, case, world, json=body), 422, "validation_failed", field=field
        )
        assert len(problem["errors"]) == 1, problem
        if not together.keys() & change.keys():
            together |= change
            expected.add(field)
    body = {**case.valid(world), **together}
    problem = await world.refused(send(client, case, world, json=body), 422, "validation_failed")
    assert {e["field"] for e in problem["errors"]} == expected


@pytest.mark.parametrize("case", bodies())
async def test_a_megabyte_string_is_refused_before_it_is_read(
    client: httpx.AsyncClient, world: World, case: BodyCase
) -> None:
    for field in case.strings:
        body = with_value(case.valid(world), field, MEGABYTE)
        problem = await world.refused(send(client, case, world, json=body), 413, "body_too_large")
        assert "262144 bytes" in problem["detail"]


@pytest.mark.parametrize("case", bodies())
async def test_a_megabyte_string_under_the_body_limit_fails_its_length_check(
    big_client: httpx.AsyncClient, big_world: World, case: BodyCase
) -> None:
    for field in case.strings:
        body = with_value(case.valid(big_world), field, MEGABYTE)
        request = send(big_client, case, big_world, json=body)
        await big_world.refused(request, 422, "validation_failed", field=field)


async def test_a_streamed_body_over_the_limit_is_413_too(
    client: httpx.AsyncClient, world: World
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(64):
            yield b"x" * 8192
        yield b'", "name": "N"}'

    request = client.post(
        "/v1/customers",
        content=chunks(),
        headers={"content-type": "application/json", "x-request-id": "streamed-1"},
    )
    problem = await world.refused(request, 413, "body_too_large")
    assert problem["request_id"] == "streamed-1"


async def test_a_small_body_limit_refuses_an_ordinary_order(database_url: str) -> None:
    async with (
        running_app(database_url, max_body_bytes=1024) as small,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=small), base_url="http://t") as http,
    ):
        world = await build_world(http, small)
        lines = [{"product_id": world.product["id"], "quantity": 1}] * 30
        request = http.post("/v1/orders", json={"lines": lines}, headers=world.owner.auth)
        problem = await world.refused(request, 413, "body_too_large")
        assert "1024 bytes" in problem["detail"]


# -- quantities and lines ----------------------------------------------------------------------

BAD_QUANTITIES = (0, -1, 10_001, 2**63, 1.5, "2", True, None)


async def test_quantities_are_whole_numbers_from_1_to_10000(
    client: httpx.AsyncClient, world: World
) -> None:
    orders, lines = "/v1/orders", f"/v1/orders/{world.order['id']}/lines"
    line = f"{lines}/{world.product['id']}"
    auth = world.owner.auth
    for qty in BAD_QUANTITIES:
        body = {"lines": [{"product_id": world.spare["id"], "quantity": qty}]}
        request = client.post(orders, json=body, headers=auth)
        await world.refused(request, 422, "validation_failed", field="lines[0].quantity")
        body = {"product_id": world.spare["id"], "quantity": qty}
        request = client.post(lines, json=body, headers=auth)
        await world.refused(request, 422, "validation_failed", field="quantity")
        request = client.put(line, json={"quantity": qty}, headers=auth)
        await world.refused(request, 422, "validation_failed", field="quantity")


async def test_adding_units_past_10000_on_one_line_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    path = f"/v1/orders/{world.order['id']}/lines"
    body = {"product_id": world.product["id"], "quantity": 9_999}
    assert (await client.post(path, json=body, headers=world.owner.auth)).status_code == 200
    body["quantity"] = 2
    request = client.post(path, json=body, headers=world.owner.auth)
    await world.refused(request, 422, "invalid_quantity", field="quantity")


async def test_ten_thousand_lines_are_refused_whatever_the_body_limit(
    client: httpx.AsyncClient, world: World, big_client: httpx.AsyncClient, big_world: World
) -> None:
    lines = [{"product_id": world.product["id"], "quantity": 1}] * 10_000
    request = client.post("/v1/orders", json={"lines": lines}, headers=world.owner.auth)
    await world.refused(request, 413, "body_too_large")

    request = big_client.post("/v1/orders", json={"lines": lines}, headers=big_world.owner.auth)
    await big_world.refused(request, 422, "validation_failed", field="lines")

    request = client.post("/v1/orders", json={"lines": lines[:101]}, headers=world.owner.auth)
    await world.refused(request, 422, "validation_failed", field="lines")


async def test_the_101st_product_on_an_order_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    catalog = app.state.container.catalog
    ids = []
    for _ in range(100):
        made = await catalog.create_product(
            actor_id=world.staff.id,
            sku=f"MANY-{len(ids)}-{world.order['id'][-12:]}",
            name="many",
            description="",
            price_amount=1,
            currency="EUR",
            weight_grams=0,
            initial_stock=0,
        )
        ids.append(made.id)
    full = await draft(client, world.owner, [(pid, 1) for pid in ids])
    assert len(full["lines"]) == 100
    world.extra.append(full["id"])
    path = f"/v1/orders/{full['id']}/lines"
    request = client.post(
        path, json={"product_id": world.spare["id"], "quantity": 1}, headers=world.owner.auth
    )
    await world.refused(request, 422, "too_many_lines", field="lines")
    again = await client.post(
        path, json={"product_id": ids[0], "quantity": 1}, headers=world.owner.auth
    )
    assert again.status_code == 200, "raising the quantity of a line already there is fine"


async def test_an_order_worth_more_than_money_can_hold_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    dear = await create_product(client, world.staff, price=MAX_AMOUNT)
    world.extra.append(dear["id"])
    body = {"lines": [{"product_id": dear["id"], "quantity": 2}]}
    request = client.post("/v1/orders", json=body, headers=world.owner.auth)
    await world.refused(request, 422, "amount_too_large")


# -- products: unknown, inactive, another currency ---------------------------------------------


async def test_unknown_products_are_404(client: httpx.AsyncClient, world: World) -> None:
    staff, owner = world.staff.auth, world.owner.auth
    order = f"/v1/orders/{world.order['id']}"
    for unknown in (UNKNOWN, "not-a-uuid", "x"):
        product = f"/v1/products/{unknown}"
        for request in (
            client.get(product),
            client.get(product, headers=staff),
            client.patch(product, json={"name": "n"}, headers=staff),
            client.post(
                f"{product}/stock-adjustments", json={"delta": 1, "reason": "r"}, headers=staff
            ),
            client.get(f"{product}/stock-adjustments", headers=staff),
            client.post(
                "/v1/orders",
                json={"lines": [{"product_id": unknown, "quantity": 1}]},
                headers=owner,
            ),
            client.post(
                f"{order}/lines", json={"product_id": unknown, "quantity": 1}, headers=owner
            ),
        ):
            await world.refused(request, 404, "product_not_found")
        for request in (
            client.put(f"{order}/lines/{unknown}", json={"quantity": 1}, headers=owner),
            client.delete(f"{order}/lines/{unknown}", headers=owner),
        ):
            await world.refused(request, 404, "line_not_found", field="product_id")
    not_on_order = f"{order}/lines/{world.spare['id']}"
    request = client.put(not_on_order, json={"quantity": 1}, headers=owner)
    await world.refused(request, 404, "line_not_found")


async def test_inactive_products_cannot_be_ordered(client: httpx.AsyncClient, app: FastAPI) -> None:
    world = await build_world(client, app)
    staff, owner = world.staff.auth, world.owner.auth
    for product in (world.spare, world.product):
        hidden = await client.patch(
            f"/v1/products/{product['id']}", json={"active": False}, headers=staff
        )
        assert hidden.status_code == 200
    body = {"lines": [{"product_id": world.spare["id"], "quantity": 1}]}
    await world.refused(
        client.post("/v1/orders", json=body, headers=owner), 409, "product_inactive"
    )
    lines = f"/v1/orders/{world.order['id']}/lines"
    request = client.post(lines, json=body["lines"][0], headers=owner)
    await world.refused(request, 409, "product_inactive")
    # the product on the draft was deactivated after it was added: placing it is refused
    place = f"/v1/orders/{world.order['id']}/place"
    request = client.post(place, json={"card_number": SUCCESS_CARD}, headers=owner)
    await world.refused(request, 409, "product_inactive")


async def test_a_product_priced_in_another_currency_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    owner = world.owner.auth
    dollars = await create_product(client, world.staff, currency="USD")
    world.extra.append(dollars["id"])
    lines = f"/v1/orders/{world.order['id']}/lines"
    request = client.post(lines, json={"product_id": dollars["id"], "quantity": 1}, headers=owner)
    await world.refused(request, 422, "currency_mismatch", field="product_id")
    for currency, product in (("EUR", dollars), ("USD", world.product)):
        body = {"currency": currency, "lines": [{"product_id": product["id"], "quantity": 1}]}
        request = client.post("/v1/orders", json=body, headers=owner)
        await world.refused(request, 422, "currency_mismatch")


async def test_a_price_moved_to_another_currency_stops_the_checkout(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    path = f"/v1/products/{world.product['id']}"
    price = {"price": {"amount": 1000, "currency": "USD"}}
    assert (await client.patch(path, json=price, headers=world.staff.auth)).status_code == 200
    place = f"/v1/orders/{world.order['id']}/place"
    request = client.post(place, json={"card_number": SUCCESS_CARD}, headers=world.owner.auth)
    await world.refused(request, 422, "currency_mismatch")


async def test_unknown_currencies_are_refused(client: httpx.AsyncClient, world: World) -> None:
    for currency in ("XYZ", "eur", "E R"):
        body = {"currency": currency}
        request = client.post("/v1/orders", json=body, headers=world.owner.auth)
        await world.refused(request, 422, "invalid_currency", field="currency")
        product = {"sku": "CUR-1", "name": "n", "price": {"amount": 1, "currency": currency}}
        request = client.post("/v1/products", json=product, headers=world.staff.auth)
        await world.refused(request, 422, "invalid_currency", field="currency")
        patch = {"price": {"amount": 1, "currency": currency}}
        path = f"/v1/products/{world.product['id']}"
        request = client.patch(path, json=patch, headers=world.staff.auth)
        await world.refused(request, 422, "invalid_currency", field="currency")


async def test_invalid_skus_and_names_are_refused(client: httpx.AsyncClient, world: World) -> None:
    base = {"name": "n", "price": {"amount": 1, "currency": "EUR"}}
    for sku in ("has space", "-LEADING", "ÜMLAUT", "   ", "x" * 64 + "\n"):
        request = client.post("/v1/products", json={**base, "sku": sku}, headers=world.staff.auth)
        await world.refused(request, 422, ("invalid_sku", "validation_failed"), field="sku")
    body = {**base, "sku": "BLANK-NAME", "name": "   "}
    request = client.post("/v1/products", json=body, headers=world.staff.auth)
    await world.refused(request, 422, "invalid_product", field="name")


# -- accounts ----------------------------------------------------------------------------------

INVALID_EMAILS = (
    "",
    "plain",
    "a@b",
    "a@@example.com",
    "@example.com",
    "a@example.c",
    "a b@example.com",
    "ada@exämple.com",
    "ada@example.com\nbcc@example.com",
    "x" * 250 + "@example.com",
)


async def test_invalid_emails_are_refused(client: httpx.AsyncClient, world: World) -> None:
    for email in INVALID_EMAILS:
        body = {"email": email, "password": "long enough", "name": "N"}
        request = client.post("/v1/customers", json=body)
        await world.refused(request, 422, ("invalid_email", "validation_failed"), field="email")
        body = {"email": email, "password": "long enough"}
        if forbidden_character(email) is not None:  # a malformed request, whoever sends it
            request = client.post("/v1/auth/token", json=body)
            await world.refused(request, 422, "validation_failed", field="email")
        elif len(email) <= 254:  # logging in with one says nothing about what was wrong
            request = client.post("/v1/auth/token", json=body)
            await world.refused(request, 401, "invalid_credentials")


async def test_weak_passwords_and_blank_names_are_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    for password in ("short", "7 chars", "x" * 129):
        body = {"email": "weak@example.com", "password": password, "name": "N"}
        request = client.post("/v1/customers", json=body)
        await world.refused(request, 422, "weak_password", field="password")
    body = {"email": "weak@example.com", "password": "", "name": "N"}
    request = client.post("/v1/customers", json=body)
    await world.refused(request, 422, "validation_failed", field="password")
    for name, code in (("   ", "invalid_name"), ("  \t ", "validation_failed")):
        body = {"email": "blank@example.com", "password": "long enough", "name": name}
        await world.refused(client.post("/v1/customers", json=body), 422, code, field="name")


# -- the order state machine, discounts and cards ----------------------------------------------


async def test_transitions_the_state_machine_does_not_allow(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    order, staff, owner = f"/v1/orders/{world.order['id']}", world.staff.auth, world.owner.auth
    for action in ("confirm", "ship", "deliver"):
        problem = await world.refused(
            client.post(f"{order}/{action}", headers=staff), 409, "invalid_transition"
        )
        assert problem["status"] == 409
    card = {"card_number": SUCCESS_CARD}
    empty = await draft(client, world.owner, [], shipping_address=None)
    world.extra.append(empty["id"])
    request = client.post(f"/v1/orders/{empty['id']}/place", json=card, headers=owner)
    await world.refused(request, 422, "empty_order", field="lines")
    nowhere = await draft(client, world.owner, [(world.product["id"], 1)], shipping_address=None)
    world.extra.append(nowhere["id"])
    request = client.post(f"/v1/orders/{nowhere['id']}/place", json=card, headers=owner)
    await world.refused(request, 422, "missing_address", field="shipping_address")

    placed = await client.post(f"{order}/place", json=card, headers=owner)
    assert placed.status_code == 200, placed.text
    line = {"product_id": world.spare["id"], "quantity": 1}
    for request in (
        client.post(f"{order}/place", json=card, headers=owner),
        client.post(f"{order}/lines", json=line, headers=owner),
        client.put(f"{order}/discount", json={"code": "WELCOME10"}, headers=owner),
        client.put(f"{order}/addresses", json={"shipping_address": ADDRESS}, headers=owner),
    ):
        await world.refused(request, 409, "order_not_draft")
    for action in ("ship", "deliver"):
        request = client.post(f"{order}/{action}", headers=staff)
        await world.refused(request, 409, "invalid_transition")
    cancelled = await client.post(f"{order}/cancel", headers=owner)
    assert cancelled.status_code == 200
    for action in ("cancel", "confirm"):
        request = client.post(f"{order}/{action}", headers=staff)
        await world.refused(request, 409, "invalid_transition")


async def test_unknown_discount_codes_are_refused(client: httpx.AsyncClient, world: World) -> None:
    path = f"/v1/orders/{world.order['id']}/discount"
    for code in ("NOPE", "WELCOME11", "   ", "WELCOME10%"):
        request = client.put(path, json={"code": code}, headers=world.owner.auth)
        await world.refused(request, 422, "invalid_discount_code", field="discount_code")
        request = client.post("/v1/orders", json={"discount_code": code}, headers=world.owner.auth)
        await world.refused(request, 422, "invalid_discount_code", field="discount_code")


async def test_invalid_card_numbers_are_refused_before_anything_is_reserved(
    client: httpx.AsyncClient, world: World
) -> None:
    path = f"/v1/orders/{world.order['id']}/place"
    for card in (
        "4242 4242 4242 4241",  # fails the Luhn check
        "abcd efgh ijkl mnop",
        "４２４２ ４２４２ ４２４２ ４２４２",  # full-width digits  # noqa: RUF001
        "4242-4242-4242-424²",
        "0000000000000000000000",  # too many digits
        "            ",
    ):
        request = client.post(path, json={"card_number": card}, headers=world.owner.auth)
        await world.refused(request, 422, "invalid_card", field="card_number")


# -- If-Match, cursors, limits, path ids and other parameters ----------------------------------

BAD_IF_MATCH: tuple[str | bytes, ...] = (
    "abc",
    '"x"',
    "W/",
    '"1.5"',
    '"-1"',
    '"1234567890123"',
    b'"\xb2"',  # a superscript two in latin-1: str.isdigit says yes, int() says no
    '""3""',  # quotes stripped any number of times used to pass; the documented pattern does not
    'W/ "3"',
)


async def test_a_malformed_if_match_is_422(client: httpx.AsyncClient, world: World) -> None:
    order = f"/v1/orders/{world.order['id']}"
    for value in BAD_IF_MATCH:
        owner = {**world.owner.auth, "If-Match": value}
        staff = {**world.staff.auth, "If-Match": value}
        for request in (
            client.put(f"{order}/addresses", json={"shipping_address": ADDRESS}, headers=owner),
            client.delete(f"{order}/discount", headers=owner),
            client.post(f"{order}/cancel", headers=owner),
            client.patch(f"/v1/products/{world.product['id']}", json={}, headers=staff),
        ):
            await world.refused(request, 422, "invalid_if_match", field="If-Match")
    too_long = {**world.owner.auth, "If-Match": '"' + "1" * 70 + '"'}
    request = client.delete(f"{order}/discount", headers=too_long)
    await world.refused(request, 422, "validation_failed", field="If-Match")


async def test_a_stale_if_match_is_409_with_the_current_version(
    client: httpx.AsyncClient, world: World
) -> None:
    order = f"/v1/orders/{world.order['id']}"
    version = world.order["version"]
    stale = {**world.owner.auth, "If-Match": f'"{version - 1}"'}
    for request in (
        client.put(f"{order}/discount", json={"code": "WELCOME10"}, headers=stale),
        client.post(f"{order}/place", json={"card_number": SUCCESS_CARD}, headers=stale),
        client.post(f"{order}/cancel", headers=stale),
    ):
        problem = await world.refused(request, 409, "order_conflict")
        assert problem["current_version"] == version
    product = f"/v1/products/{world.product['id']}"
    stale = {**world.staff.auth, "If-Match": 'W/"7"'}
    request = client.patch(product, json={"name": "Lost update"}, headers=stale)
    problem = await world.refused(request, 409, "product_conflict")
    assert problem["current_version"] == world.product["version"]


async def test_a_malformed_idempotency_key_is_422(client: httpx.AsyncClient, world: World) -> None:
    order = f"/v1/orders/{world.order['id']}"
    for key in (b"", b"k" * 256, b"\x00", b"tab\there"):
        owner = {**world.owner.auth, "Idempotency-Key": key}
        for request in (
            client.post("/v1/orders", json={}, headers=owner),
            client.put(f"{order}/discount", json={"code": "WELCOME10"}, headers=owner),
            client.delete(f"{order}/lines/{world.product['id']}", headers=owner),
        ):
            await world.refused(request, 422, "invalid_idempotency_key")


LISTS = (
    ("/v1/products", "anyone"),
    ("/v1/customers", "staff"),
    ("/v1/orders", "owner"),
    ("/v1/products/{product_id}/stock-adjustments", "staff"),
)


def _list_headers(who: str, world: World) -> dict[str, str]:
    return {"anyone": {}, "staff": world.staff.auth, "owner": world.owner.auth}[who]


async def test_a_cursor_we_did_not_make_is_422(client: httpx.AsyncClient, world: World) -> None:
    for path, who in LISTS:
        url = path.format(product_id=world.product["id"])
        for cursor in ("!!!", "bm90LWFuLWlk", "%%%", "x", "0" * 200):
            request = client.get(url, params={"cursor": cursor}, headers=_list_headers(who, world))
            await world.refused(request, 422, "invalid_cursor", field="cursor")
        request = client.get(url, params={"cursor": "x" * 201}, headers=_list_headers(who, world))
        await world.refused(request, 422, "validation_failed", field="cursor")


async def test_page_sizes_outside_1_to_100_are_422(client: httpx.AsyncClient, world: World) -> None:
    for path, who in LISTS:
        url = path.format(product_id=world.product["id"])
        headers = _list_headers(who, world)
        for limit in ("0", "101", "-1", "ten", "1.5", "1e2"):
            request = client.get(url, params={"limit": limit}, headers=headers)
            await world.refused(request, 422, "validation_failed", field="limit")
        for limit in ("1", "100"):
            assert (await client.get(url, params={"limit": limit}, headers=headers)).is_success


async def test_other_bad_query_parameters_are_422(client: httpx.AsyncClient, world: World) -> None:
    owner, staff = world.owner.auth, world.staff.auth
    for url, params, headers, field in (
        ("/v1/orders", {"status": "lost"}, owner, "status"),
        ("/v1/orders", {"customer_id": "x" * 37}, staff, "customer_id"),
        ("/v1/products", {"q": "x" * 101}, {}, "q"),
        ("/v1/products", {"q": "x" * 60_000}, {}, "q"),
        ("/v1/products", {"include_inactive": "perhaps"}, staff, "include_inactive"),
    ):
        request = client.get(url, params=params, headers=headers)
        await world.refused(request, 422, "validation_failed", field=field)


def _with_id_params() -> list[Any]:
    params = []
    for case in ROUTES:
        for name in re.findall(r"{(\w+)}", case.path):
            params.append(pytest.param(case, name, id=f"{case.id} {name}"))
    return params


@pytest.mark.parametrize(("case", "name"), _with_id_params())
async def test_an_over_long_path_id_is_422(
    client: httpx.AsyncClient, world: World, case: RouteCase, name: str
) -> None:
    for long_id in ("0" * 37, "a" * 10_000):
        request = case.send(client, world, headers=caller(case, world), **{name: long_id})
        problem = await world.refused(request, 422, "validation_failed", field=name)
        assert problem["errors"] == [
            {"field": name, "in": "path", "reason": problem["errors"][0]["reason"]}
        ]


async def test_a_nul_character_is_refused_alike_on_both_databases_naming_the_field(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    world = await build_world(client, app)
    staff, owner = world.staff.auth, world.owner.auth
    requests = (
        (client.get("/v1/products/%00"), "product_id"),
        (client.get(f"/v1/orders/{world.order['id'][:-1]}%00", headers=owner), "order_id"),
        (client.get("/v1/products", params={"q": "a\x00b"}), "q"),
        (client.get("/v1/orders", params={"customer_id": "\x00"}, headers=staff), "customer_id"),
        (
            client.patch(
                f"/v1/products/{world.product['id']}", json={"name": "Nul\x00"}, headers=staff
            ),
            "name",
        ),
        (
            client.post(
                "/v1/customers",
                json={
                    "email": f"nul-{world.order['id']}@example.com",
                    "password": "nul password 1",
                    "name": "Nul\x00",
                },
            ),
            "name",
        ),
    )
    for request, field in requests:
        # refused by the one rule for text before PostgreSQL (which cannot store NUL) is asked
        await world.refused(request, 422, "validation_failed", field=field)


async def test_if_match_star_means_any_version(client: httpx.AsyncClient, world: World) -> None:
    changed = await client.patch(
        f"/v1/products/{world.product['id']}",
        json={"description": "any version will do"},
        headers={**world.staff.auth, "If-Match": "*"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["description"] == "any version will do"


async def test_unknown_routes_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(await client.delete("/v1/products"), 405, "method_not_allowed")
    assert_problem(await client.put(f"/v1/products/{UNKNOWN}", json={}), 405)


async def test_a_json_body_sent_as_plain_text_is_not_parsed(
    client: httpx.AsyncClient, world: World
) -> None:
    content = b'{"email": "plain@example.com", "password": "long enough", "name": "N"}'
    request = client.post("/v1/customers", content=content, headers={"content-type": "text/plain"})
    await world.refused(request, 422, "validation_failed", field="body")


# -- one rule for free text --------------------------------------------------------------------

# C0 and C1 controls, DEL, an escape sequence's start and a lone surrogate: never in text
CONTROL = ("\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9b", "\ud800")
# only in multi-line text
LINE_BREAKS = ("\n", "\r", "\t", "\u2028", "\u2029")
MULTILINE = frozenset({"description"})
# secrets, compared as given and never shown: a password may hold any character, and a token
# that is not one of ours is a 401
OPAQUE = frozenset({"password", "access_token"})


@dataclass(frozen=True)
class TextInput:
    where: str  # body, query or path
    name: str  # a body field's path (``a.b``, ``a[0].b``) or a parameter's name

    @property
    def refused(self) -> tuple[str, ...]:
        last = re.split(r"[.\]]", self.name)[-1]
        chars = CONTROL if last in MULTILINE else CONTROL + LINE_BREAKS
        # a URL carries UTF-8, which cannot encode a lone surrogate; JSON can (as an escape)
        return chars if self.where == "body" else tuple(c for c in chars if c != "\ud800")


def _strings(schema: dict[str, Any], spec: dict[str, Any], path: str) -> list[str]:
    """Paths of the string fields in a JSON schema (objects and arrays walked into)."""
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    found = []
    for option in schema.get("anyOf", ()):
        found += _strings(option, spec, path)
    if schema.get("type") == "object" or "properties" in schema:
        for name, sub in schema.get("properties", {}).items():
            found += _strings(sub, spec, f"{path}.{name}" if path else name)
    elif schema.get("type") == "array":
        found += _strings(schema["items"], spec, f"{path}[0]")
    elif schema.get("type") == "string" or "enum" in schema:
        found.append(path)
    return list(dict.fromkeys(found))


def text_inputs(spec: dict[str, Any], case: RouteCase) -> list[TextInput]:
    """Every text input of a route as its OpenAPI document describes it (headers aside)."""
    operation = spec["paths"].get(case.path, {}).get(case.method.lower(), {})
    inputs = [
        TextInput(p["in"], p["name"])
        for p in operation.get("parameters", ())
        if p["in"] in ("query", "path") and _strings(p.get("schema", {}), spec, "x")
    ]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        inputs += [TextInput("body", f) for f in _strings(body["schema"], spec, "")]
    return [i for i in inputs if re.split(r"[.\]]", i.name)[-1] not in OPAQUE]


def _spoiled(value: Any, char: str) -> str:
    """A value like ``value`` (same length when it has two characters or more) holding ``char``."""
    base = value if isinstance(value, str) and value else "ab"
    return base[0] + char + base[2:] if len(base) >= 2 else base + char


async def _send_text(
    client: httpx.AsyncClient, world: World, case: RouteCase, text: TextInput, char: str
) -> httpx.Response:
    headers = caller(case, world)
    body_case = next((b for b in BODIES if b.route == case), None)
    body = body_case.valid(world) if body_case else (case.body(world) if case.body else None)
    if text.where == "body":
        current: Any = body
        for part in re.findall(r"[^.\[\]]+", text.name):
            current = current.get(part) if isinstance(current, dict) else None
            if isinstance(current, list):
                current = current[0]
        assert body is not None
        body = with_value(body, text.name, _spoiled(current, char))
        # ASCII JSON: a lone surrogate travels as its \\u escape
        content = json.dumps(body, ensure_ascii=True).encode()
        headers = {**headers, "content-type": "application/json"}
        return await client.request(case.method, case.url(world), content=content, headers=headers)
    if text.where == "path":
        spoiled = quote(_spoiled(world.ids()[text.name], char), safe="")
        url = case.url(world, **{text.name: spoiled})
        return await client.request(case.method, url, json=body, headers=headers)
    # the case's own query string (a search's q) stays; httpx would replace it with params
    url, _, query = case.url(world).partition("?")
    params = {**dict(parse_qsl(query)), text.name: _spoiled("", char)}
    return await client.request(case.method, url, json=body, params=params, headers=headers)


async def test_the_text_inputs_found_include_every_kind(app: FastAPI) -> None:
    found = {
        (case.id, text.where, text.name)
        for case in ROUTES
        for text in text_inputs(app.openapi(), case)
    }
    for expected in (
        ("POST /v1/orders", "body", "shipping_address.street"),
        ("POST /v1/orders", "body", "lines[0].product_id"),
        ("POST /v1/products", "body", "price.currency"),
        ("PATCH /v1/products/{product_id}", "body", "description"),
        ("GET /v1/products", "query", "q"),
        ("GET /v1/orders", "query", "customer_id"),
        ("GET /v1/orders/{order_id}/events", "path", "order_id"),
        ("GET /v1/events", "query", "type"),
    ):
        assert expected in found
    assert not any(name.endswith("password") for _, _, name in found)


@pytest.mark.parametrize("case", routes())
async def test_control_characters_are_refused_in_every_text_input_naming_it(
    client: httpx.AsyncClient, app: FastAPI, world: World, case: RouteCase
) -> None:
    for text in text_inputs(app.openapi(), case):
        for char in text.refused:
            async with asyncio.timeout(10):  # an event stream let through would never end
                problem = await world.refused(
                    _send_text(client, world, case, text, char), 422, field=text.name
                )
            assert problem["field"] == text.name, (text, char)


async def test_multi_line_text_keeps_its_line_breaks_and_any_script_is_welcome(
    client: httpx.AsyncClient, world: World
) -> None:
    description = "Line one\r\nline two\n\tindented\u2028after a separator"
    name = "Zoë's 🛒 café \u2013 東京 \u2013 شاي"
    path = f"/v1/products/{world.product['id']}"
    body = {"description": description, "name": name}
    changed = await client.patch(path, json=body, headers=world.staff.auth)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["description"], changed.json()["name"]) == (description, name)
    again = await client.get(path)
    assert (again.json()["description"], again.json()["name"]) == (description, name)
    restored = {"description": world.product["description"], "name": world.product["name"]}
    assert (await client.patch(path, json=restored, headers=world.staff.auth)).is_success
