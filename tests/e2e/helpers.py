"""Helpers that drive the HTTP API the way a storefront would."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import Enum
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from mercato.bootstrap import Container
from mercato.customers import Role
from mercato.migrations.schema import metadata
from mercato.platform.db import sql
from mercato.web.app import create_app
from tests.conftest import make_settings, unique

SUCCESS_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
ERROR_CARD = "4000 0000 0000 0119"
ADDRESS = {
    "street": "Unter den Linden 1",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
}


@dataclass
class User:
    id: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(client: httpx.AsyncClient, *, password: str = "correct horse battery") -> User:
    email = f"{unique('c')}@example.com"
    created = await client.post(
        "/v1/customers", json={"email": email, "password": password, "name": "Test Customer"}
    )
    assert created.status_code == 201, created.text
    return await login(client, email, password)


async def login(client: httpx.AsyncClient, email: str, password: str) -> User:
    token = await client.post("/v1/auth/token", json={"email": email, "password": password})
    assert token.status_code == 200, token.text
    body = token.json()
    return User(body["customer_id"], email, body["access_token"])


async def staff_user(client: httpx.AsyncClient, container: Container) -> User:
    email = f"{unique('s')}@example.com"
    await container.customers.register(
        email=email, password="staff password 1", name="Staff", role=Role.STAFF
    )
    return await login(client, email, "staff password 1")


async def create_product(
    client: httpx.AsyncClient,
    staff: User,
    *,
    stock: int = 10,
    price: int = 1000,
    currency: str = "EUR",
    weight: int = 500,
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "sku": unique("SKU").upper(),
        "name": "Test product",
        "description": "for tests",
        "price": {"amount": price, "currency": currency},
        "weight_grams": weight,
        "initial_stock": stock,
        **extra,
    }
    created = await client.post("/v1/products", json=body, headers=staff.auth)
    assert created.status_code == 201, created.text
    return created.json()


async def draft(
    client: httpx.AsyncClient, customer: User, lines: list[tuple[str, int]], **extra: Any
) -> dict[str, Any]:
    body = {
        "lines": [{"product_id": pid, "quantity": qty} for pid, qty in lines],
        "shipping_address": ADDRESS,
        **extra,
    }
    created = await client.post("/v1/orders", json=body, headers=customer.auth)
    assert created.status_code == 201, created.text
    return created.json()


async def product_state(client: httpx.AsyncClient, staff: User, product_id: str) -> dict[str, Any]:
    got = await client.get(f"/v1/products/{product_id}", headers=staff.auth)
    assert got.status_code == 200, got.text
    return got.json()


# -- problems, database snapshots and a shared scenario ----------------------------------------

PROBLEM_JSON = "application/problem+json"
# Webhook endpoints made by the table-driven tests: disabled, on a port nothing listens on.
WORLD_WEBHOOK_URL = "http://127.0.0.1:9/world"
NO_DELIVERY = "01900000-0000-7000-8000-0000000000de"


def assert_problem(
    response: httpx.Response,
    status: int,
    code: str | Collection[str] | None = None,
    *,
    field: str | None = None,
) -> dict[str, Any]:
    """Assert an RFC 9457 problem with this status (and code and field); return its body."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert body["type"].endswith("/" + body["code"]), body
    assert body["title"], body
    assert body["detail"], body
    assert body["request_id"] == response.headers["x-request-id"], body
    if isinstance(code, str):
        assert body["code"] == code, body
    elif code is not None:
        assert body["code"] in code, body
    if field is not None:
        assert body.get("field") == field, body
    return body


_SLOTS = 12  # ids compared per statement; more are looked at in several rounds
# Tables whose rows are only ever added (no relay runs in these tests): their count is enough.
_APPEND_ONLY = frozenset({"platform_outbox", "catalog_stock_adjustments"})
# Failed-attempt counters: a refused login or discount code is counted there by design.
_NOT_DATA = frozenset({"platform_throttle"})


def is_id_column(column: sa.Column[Any]) -> bool:
    """Columns that hold the id of an aggregate (their own or one they refer to)."""
    return column.name in ("id", "scope") or column.name.endswith("_id")


def _as_text(column: sa.Column[Any]) -> sa.ColumnElement[str]:
    return sa.func.coalesce(sa.cast(column, sa.Text), "<null>")


def _label(text: str) -> sa.ColumnElement[str]:
    return sa.cast(sa.literal(text), sa.Text).label("t")


class DatabaseProbe:
    """Row counts of every table, and every row that mentions one of a set of watched ids.

    Counting every table catches any insert or delete; the watched rows (the products,
    customers and orders a test made, their lines, reservations and payments) catch any
    update, without reading the whole, ever-growing database. It is one ``UNION ALL``
    statement, each row rendered as text, so a snapshot is one round trip.
    """

    def __init__(self) -> None:
        slots = [sa.bindparam(f"w{i}", type_=sa.String) for i in range(_SLOTS)]
        parts: list[sa.Select[Any]] = []
        for table in metadata.sorted_tables:
            if table.name in _NOT_DATA:
                continue
            count = sa.cast(sa.func.count(), sa.Text).label("v")
            parts.append(sa.select(_label(f"{table.name} (rows)"), count).select_from(table))
            ids = [c for c in table.c if is_id_column(c)]
            if ids and table.name not in _APPEND_ONLY:
                row = functools.reduce(lambda a, b: a + " | " + b, map(_as_text, table.c))
                watched = sa.or_(*(c.in_(slots) for c in ids))
                parts.append(sa.select(_label(table.name), row.label("v")).where(watched))
        self.statement = sql(sa.union_all(*parts))

    async def take(self, app: FastAPI, watch: Collection[str]) -> Snapshot:
        container: Container = app.state.container
        ids = sorted(watch) or [""]
        result: Snapshot = {}
        async with container.db.connection() as conn:
            for start in range(0, len(ids), _SLOTS):
                chunk = ids[start : start + _SLOTS]
                params = {f"w{i}": chunk[i] if i < len(chunk) else "" for i in range(_SLOTS)}
                for row in await conn.fetch(self.statement, **params):
                    result.setdefault(row["t"], []).append((row["v"],))
        return {name: sorted(set(rows)) for name, rows in result.items()}


Snapshot = dict[str, list[tuple[Any, ...]]]
_PROBE: list[DatabaseProbe] = []


async def snapshot(app: FastAPI, watch: Collection[str] = ()) -> Snapshot:
    """Row counts of every table and every row that mentions a watched id."""
    if not _PROBE:
        _PROBE.append(DatabaseProbe())
    return await _PROBE[0].take(app, watch)


def _differences(before: Snapshot, after: Snapshot) -> list[str]:
    changed = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, []), after.get(name, [])
        if old != new:
            added = [r for r in new if r not in old][:3]
            removed = [r for r in old if r not in new][:3]
            changed.append(f"{name}: +{added} -{removed}")
    return changed


@asynccontextmanager
async def database_unchanged(app: FastAPI, watch: Collection[str] = ()) -> AsyncIterator[None]:
    """Assert that no table gains or loses rows, and no watched row changes, in the block."""
    before = await snapshot(app, watch)
    yield
    after = await snapshot(app, watch)
    assert not _differences(before, after), _differences(before, after)


async def refused(
    app: FastAPI,
    request: Awaitable[httpx.Response],
    status: int,
    code: str | Collection[str] | None = None,
    *,
    field: str | None = None,
    watch: Collection[str] = (),
) -> dict[str, Any]:
    """Send a request that must be refused with a problem and leave the database unchanged."""
    async with database_unchanged(app, watch):
        response = await request
    return assert_problem(response, status, code, field=field)


@dataclass
class World:
    """A staff member, an order owner, another customer, two products and the owner's draft."""

    app: FastAPI
    staff: User
    owner: User
    other: User
    product: dict[str, Any]
    spare: dict[str, Any]
    order: dict[str, Any]
    webhook_id: str = ""
    extra: list[str] = dataclass_field(default_factory=list)

    def ids(self) -> dict[str, str]:
        """Values for the path parameters of every route."""
        return {
            "order_id": self.order["id"],
            "product_id": self.product["id"],
            "customer_id": self.owner.id,
            "name": "realtime",  # a kill switch; the cases only ever turn it on
            "endpoint_id": self.webhook_id,
            # the world's endpoint is disabled, so it has no deliveries: the cases that name one
            # are refused before it is looked up
            "delivery_id": NO_DELIVERY,
        }

    @property
    def watched(self) -> set[str]:
        """The ids of everything this world made (and anything added to ``extra``)."""
        users = (self.staff.id, self.owner.id, self.other.id)
        made = (self.product["id"], self.spare["id"], self.order["id"], self.webhook_id)
        return {*users, *made, *self.extra}

    def unchanged(self) -> AbstractAsyncContextManager[None]:
        """Assert that the block changes no table's row count and none of this world's rows."""
        return database_unchanged(self.app, self.watched)

    async def refused(
        self,
        request: Awaitable[httpx.Response],
        status: int,
        code: str | Collection[str] | None = None,
        *,
        field: str | None = None,
    ) -> dict[str, Any]:
        """Send a request that must be refused and must leave the database unchanged."""
        return await refused(self.app, request, status, code, field=field, watch=self.watched)


async def build_world(client: httpx.AsyncClient, app: FastAPI) -> World:
    """Fresh, unique data for one test."""
    staff = await staff_user(client, app.state.container)
    product = await create_product(client, staff, stock=10)
    spare = await create_product(client, staff, stock=10)
    owner = await register(client)
    other = await register(client)
    order = await draft(client, owner, [(product["id"], 1)])
    # disabled: it receives no deliveries, so it cannot disturb any test's webhooks
    webhook = await app.state.container.webhooks.create(
        url=WORLD_WEBHOOK_URL, event_types=["OrderPlaced"], enabled=False
    )
    return World(app, staff, owner, other, product, spare, order, webhook.id)


# -- every route of the API, who may call it, and a request that would succeed -----------------


class Access(Enum):
    PUBLIC = "anyone"
    SIGNED_IN = "any signed-in user"
    STAFF = "staff only"
    ORDER_READ = "the order's owner or staff"
    ORDER_OWNER = "the order's owner only"
    ORDER_STAFF = "staff, on an order they can see"
    ORDER_CANCEL = "the order's owner or staff, to cancel"
    ORDER_FOLLOW = "the order's owner or staff, as an event stream (see test_realtime)"


Body = Callable[[World], dict[str, Any]] | None


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str
    access: Access
    body: Body = None
    status: int = 200
    query: str = ""  # a query string the route needs to answer ``status``

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, world: World, **overrides: str) -> str:
        return self.path.format(**{**world.ids(), **overrides}) + self.query

    async def send(
        self,
        client: httpx.AsyncClient,
        world: World,
        *,
        headers: dict[str, str] | None = None,
        **overrides: str,
    ) -> httpx.Response:
        """The request this case describes, with valid path ids and body for ``world``."""
        body = self.body(world) if self.body else None
        return await client.request(
            self.method, self.url(world, **overrides), json=body, headers=headers
        )


def _product_body(_: World) -> dict[str, Any]:
    return {
        "sku": unique("SKU").upper(),
        "name": "Another product",
        "price": {"amount": 500, "currency": "EUR"},
    }


_O = "/v1/orders/{order_id}"
_W = "/v1/webhooks/{endpoint_id}"
ROUTES: tuple[RouteCase, ...] = (
    RouteCase("GET", "/livez", Access.PUBLIC),
    RouteCase("GET", "/readyz", Access.PUBLIC),
    RouteCase("GET", "/startupz", Access.PUBLIC),
    RouteCase("GET", "/metrics", Access.PUBLIC),  # for Prometheus; keep it off the Ingress
    RouteCase("GET", "/openapi.json", Access.PUBLIC),
    RouteCase("GET", "/docs", Access.PUBLIC),
    RouteCase("GET", "/docs/oauth2-redirect", Access.PUBLIC),
    RouteCase("GET", "/redoc", Access.PUBLIC),
    RouteCase(
        "POST",
        "/v1/customers",
        Access.PUBLIC,
        lambda w: {"email": f"{unique('r')}@example.com", "password": "long enough", "name": "R"},
        201,
    ),
    RouteCase(
        "POST",
        "/v1/auth/token",
        Access.PUBLIC,
        lambda w: {"email": w.owner.email, "password": "correct horse battery"},
    ),
    RouteCase("GET", "/v1/products", Access.PUBLIC),
    RouteCase("GET", "/v1/products/search", Access.PUBLIC, query="?q=product"),
    RouteCase("GET", "/v1/products/{product_id}/similar", Access.PUBLIC),
    RouteCase("GET", "/v1/products/{product_id}", Access.PUBLIC),
    RouteCase("GET", "/v1/customers/me", Access.SIGNED_IN),
    RouteCase("GET", "/v1/customers", Access.STAFF),
    RouteCase("GET", "/v1/customers/{customer_id}", Access.STAFF),
    RouteCase("POST", "/v1/customers/{customer_id}/deactivate", Access.STAFF),
    RouteCase("POST", "/v1/customers/{customer_id}/activate", Access.STAFF),
    RouteCase("POST", "/v1/products", Access.STAFF, _product_body, 201),
    RouteCase("PATCH", "/v1/products/{product_id}", Access.STAFF, lambda w: {"name": "Renamed"}),
    RouteCase(
        "POST",
        "/v1/products/{product_id}/stock-adjustments",
        Access.STAFF,
        lambda w: {"delta": 1, "reason": "stock count"},
        201,
    ),
    RouteCase("GET", "/v1/products/{product_id}/stock-adjustments", Access.STAFF),
    RouteCase(
        "POST",
        "/v1/orders",
        Access.SIGNED_IN,
        lambda w: {"lines": [{"product_id": w.product["id"], "quantity": 1}]},
        201,
    ),
    RouteCase("GET", "/v1/orders", Access.SIGNED_IN),
    RouteCase("GET", _O, Access.ORDER_READ),
    RouteCase("GET", _O + "/payments", Access.ORDER_READ),
    RouteCase(
        "POST",
        _O + "/lines",
        Access.ORDER_OWNER,
        lambda w: {"product_id": w.spare["id"], "quantity": 1},
    ),
    RouteCase("PUT", _O + "/lines/{product_id}", Access.ORDER_OWNER, lambda w: {"quantity": 2}),
    RouteCase("DELETE", _O + "/lines/{product_id}", Access.ORDER_OWNER),
    RouteCase(
        "PUT", _O + "/addresses", Access.ORDER_OWNER, lambda w: {"shipping_address": ADDRESS}
    ),
    RouteCase("PUT", _O + "/discount", Access.ORDER_OWNER, lambda w: {"code": "WELCOME10"}),
    RouteCase("DELETE", _O + "/discount", Access.ORDER_OWNER),
    RouteCase("POST", _O + "/place", Access.ORDER_OWNER, lambda w: {"card_number": SUCCESS_CARD}),
    RouteCase("POST", _O + "/confirm", Access.ORDER_STAFF),
    RouteCase("POST", _O + "/ship", Access.ORDER_STAFF, lambda w: {"tracking_code": "TRACK1"}),
    RouteCase("POST", _O + "/deliver", Access.ORDER_STAFF),
    RouteCase("POST", _O + "/cancel", Access.ORDER_CANCEL, lambda w: {"reason": "not needed"}),
    RouteCase("GET", _O + "/events", Access.ORDER_FOLLOW),
    RouteCase("GET", "/v1/events", Access.STAFF),
    RouteCase("GET", "/v1/admin/switches", Access.STAFF),
    RouteCase(
        "PUT",
        "/v1/admin/switches/{name}",
        Access.STAFF,
        lambda w: {"enabled": True, "reason": "authorization check"},
    ),
    RouteCase(
        "POST",
        "/v1/webhooks",
        Access.STAFF,
        lambda w: {"url": WORLD_WEBHOOK_URL, "event_types": ["OrderPlaced"], "enabled": False},
        201,
    ),
    RouteCase("GET", "/v1/webhooks", Access.STAFF),
    RouteCase("GET", _W, Access.STAFF),
    RouteCase("PATCH", _W, Access.STAFF, lambda w: {"description": "authorization check"}),
    RouteCase("DELETE", _W, Access.STAFF, status=204),
    RouteCase("GET", _W + "/deliveries", Access.STAFF),
    RouteCase("GET", _W + "/deliveries/{delivery_id}", Access.STAFF, status=404),
    RouteCase("POST", _W + "/deliveries/{delivery_id}/replay", Access.STAFF, status=404),
)


def routes(*access: Access) -> list[Any]:
    """pytest params for the routes with these kinds of access (all when none given)."""
    return [pytest.param(r, id=r.id) for r in ROUTES if not access or r.access in access]


def app_routes(app: FastAPI) -> set[str]:
    """'METHOD /path' for every route the application serves (HEAD aside)."""
    found = set()
    for route in iter_route_contexts(app.routes):
        methods = route.methods or {"?"}
        found |= {f"{method} {route.path}" for method in methods if method != "HEAD"}
    return found


@asynccontextmanager
async def running_app(database_url: str, **overrides: object) -> AsyncIterator[FastAPI]:
    """An application for these settings, started and stopped around the block.

    Test modules share one application (a module-scoped ``app`` fixture) because FastAPI
    prepares each route of an application on its first request; that preparation, not the
    requests, would otherwise dominate the run time.
    """
    application = create_app(make_settings(database_url, **overrides))
    async with application.router.lifespan_context(application):
        yield application


async def shared_world(app: FastAPI) -> World:
    """A world for a module's tests that only send refused requests.

    Each of those requests proves it changed nothing, so the world stays as it was made; tests
    that change data build their own with :func:`build_world`.
    """
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
        return await build_world(http, app)
