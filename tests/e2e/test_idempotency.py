"""Idempotency-Key: the same transactions with or without it, only final answers kept, and
nothing stored that gives a card number or an access token away.

The first tests watch a checkout from a second database connection while the card provider is
being called: the pending payment must already be committed (so a crash leaves a record for the
reconciler) and neither the order nor its products may still be locked.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from mercato.bootstrap import Container, build
from mercato.config import Settings
from mercato.orders.service import CheckoutReconciler
from mercato.payments import ChargeRequest, ChargeResult, Outcome, PaymentMeans, SandboxProvider
from mercato.platform.db import sql
from mercato.platform.idempotency_store import idempotency_keys
from mercato.platform.security import Principal
from mercato.platform.security import Role as TokenRole
from mercato.web.app import create_app
from tests.conftest import make_settings, unique
from tests.e2e.helpers import (
    ERROR_CARD,
    SUCCESS_CARD,
    User,
    create_product,
    draft,
    register,
    staff_user,
)

pytestmark = pytest.mark.anyio


@dataclass
class Seen:
    """What a second connection saw while the provider was being called."""

    pending_payments: int
    order_locked: bool
    products_locked: bool


@dataclass
class ProbeProvider(SandboxProvider):
    """The sandbox, looking at the database from a connection of its own on every charge."""

    database_url: str = ""
    order_id: str = ""
    product_ids: list[str] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        if self.database_url.startswith("sqlite"):
            self.seen.append(await asyncio.to_thread(self._probe_sqlite))
        else:
            self.seen.append(await self._probe_postgres())
        return await super().charge(request)

    async def _probe_postgres(self) -> Seen:
        conn = await asyncpg.connect(self.database_url)
        try:
            pending = await conn.fetchval(
                "SELECT count(*) FROM payments_payments WHERE order_id = $1 AND status = 'pending'",
                self.order_id,
            )
            order = await _locked_pg(
                conn, "SELECT 1 FROM orders_orders WHERE id = $1 FOR UPDATE NOWAIT", self.order_id
            )
            products = await _locked_pg(
                conn,
                "SELECT 1 FROM catalog_products WHERE id = ANY($1::text[]) FOR UPDATE NOWAIT",
                self.product_ids,
            )
            return Seen(int(pending), order, products)
        finally:
            await conn.close()

    def _probe_sqlite(self) -> Seen:
        conn = sqlite3.connect(self.database_url.removeprefix("sqlite:///"), timeout=0)
        try:
            (pending,) = conn.execute(
                "SELECT count(*) FROM payments_payments WHERE order_id = ? AND status = 'pending'",
                (self.order_id,),
            ).fetchone()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                locked = False
            except sqlite3.OperationalError:
                locked = True  # a write transaction is open: the whole database is locked
            return Seen(int(pending), locked, locked)
        finally:
            conn.close()


async def _locked_pg(conn: asyncpg.Connection, query: str, arg: object) -> bool:
    try:
        async with conn.transaction():
            await conn.execute(query, arg)
    except asyncpg.LockNotAvailableError:
        return True
    return False


@dataclass
class World:
    app: FastAPI
    container: Container
    http: httpx.AsyncClient
    provider: ProbeProvider
    settings: Settings


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    settings = make_settings(database_url, idempotency_wait_s=0.5)
    provider = ProbeProvider(database_url=database_url)
    container = build(settings, provider=provider)
    app = create_app(settings, container=container)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mercato.test") as http:
            yield World(app, container, http, provider, settings)


async def _draft(world: World, customer: User) -> str:
    staff = await staff_user(world.http, world.container)
    product = await create_product(world.http, staff, stock=5, price=1999)
    order = await draft(world.http, customer, [(product["id"], 1)])
    world.provider.order_id = order["id"]
    world.provider.product_ids = [product["id"]]
    return str(order["id"])


@pytest.mark.parametrize("keyed", [False, True], ids=["without-key", "with-key"])
async def test_the_pending_payment_is_committed_and_no_lock_held_while_the_card_is_charged(
    world: World, keyed: bool
) -> None:
    customer = await register(world.http)
    order_id = await _draft(world, customer)
    headers = {**customer.auth, **({"Idempotency-Key": unique("k")} if keyed else {})}

    placed = await world.http.post(
        f"/v1/orders/{order_id}/place", json={"card_number": SUCCESS_CARD}, headers=headers
    )

    assert placed.status_code == 200, placed.text
    assert world.provider.seen == [
        Seen(pending_payments=1, order_locked=False, products_locked=False)
    ]


async def _stored(world: World, key: str) -> list[dict[str, object]]:
    async with world.container.db.connection() as conn:
        rows = await conn.fetch(
            sql(sa.select(idempotency_keys).where(idempotency_keys.c.key == key))
        )
    return [dict(r) for r in rows]


async def test_a_checkout_in_progress_answer_is_not_kept_and_the_same_key_places_later(
    world: World,
) -> None:
    customer = await register(world.http)
    order_id = await _draft(world, customer)
    principal = Principal(customer.id, TokenRole.CUSTOMER)
    # a request that died after reserving: its payment is pending, nobody will settle it
    died = await world.container.orders.begin_checkout(
        principal, order_id, PaymentMeans(SUCCESS_CARD), None
    )
    keyed = {**customer.auth, "Idempotency-Key": unique("k")}

    busy = await world.http.post(
        f"/v1/orders/{order_id}/place", json={"card_number": SUCCESS_CARD}, headers=keyed
    )
    again = await world.http.post(
        f"/v1/orders/{order_id}/place", json={"card_number": SUCCESS_CARD}, headers=keyed
    )

    for answer in (busy, again):
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "checkout_in_progress"
        assert answer.headers["retry-after"] == "1"
        assert "idempotent-replayed" not in answer.headers
    assert await _stored(world, keyed["Idempotency-Key"]) == []

    # the reconciler finds the provider never saw the charge and reopens the draft
    reconciler = CheckoutReconciler(world.container.orders, world.container.payments, grace_s=1)
    await reconciler.settle(died.payment, ChargeResult(Outcome.ERROR, reason="abandoned"))
    placed = await world.http.post(
        f"/v1/orders/{order_id}/place", json={"card_number": SUCCESS_CARD}, headers=keyed
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["status"] == "placed"
    replayed = await world.http.post(
        f"/v1/orders/{order_id}/place", json={"card_number": SUCCESS_CARD}, headers=keyed
    )
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.content == placed.content


async def test_a_provider_outage_answer_is_not_kept_and_a_retry_runs_again(world: World) -> None:
    customer = await register(world.http)
    order_id = await _draft(world, customer)
    keyed = {**customer.auth, "Idempotency-Key": unique("k")}

    answers = [
        await world.http.post(
            f"/v1/orders/{order_id}/place", json={"card_number": ERROR_CARD}, headers=keyed
        )
        for _ in range(2)
    ]

    assert [a.status_code for a in answers] == [503, 503], [a.text for a in answers]
    assert all("idempotent-replayed" not in a.headers for a in answers)
    assert len(world.provider.seen) == 2  # the retry really ran
    assert await _stored(world, keyed["Idempotency-Key"]) == []
    attempts = await world.container.payments.list_for_order(order_id)
    assert [p.status.value for p in attempts] == ["failed", "failed"]


async def test_the_stored_fingerprint_does_not_give_the_card_number_away(world: World) -> None:
    customer = await register(world.http)
    order_id = await _draft(world, customer)
    key = unique("k")
    card = "4242424242424242"
    path = f"/v1/orders/{order_id}/place"

    placed = await world.http.post(
        path, json={"card_number": card}, headers={**customer.auth, "Idempotency-Key": key}
    )
    assert placed.status_code == 200, placed.text

    (row,) = await _stored(world, key)
    # An attacker who read the row knows the path, the card's last four digits and its brand:
    # trying the numbers that fit (here a few thousand around the real one) must find nothing.
    candidates = [f"4242424242{n:06d}" for n in range(424242 - 2000, 424242 + 2000)]
    for number in candidates:
        for body in (f'{{"card_number":"{number}"}}', f'{{"card_number": "{number}"}}'):
            guess = b"\0".join([b"POST", path.encode(), b"", body.encode()])
            assert hashlib.sha256(guess).hexdigest() != row["fingerprint"]
    assert card not in str(row)


async def test_a_key_stored_before_fingerprints_were_keyed_still_replays(world: World) -> None:
    customer = await register(world.http)
    order_id = await _draft(world, customer)
    key = unique("k")
    keyed = {**customer.auth, "Idempotency-Key": key}
    placed = await world.http.post(
        f"/v1/orders/{order_id}/place", json={"card_number": SUCCESS_CARD}, headers=keyed
    )
    assert placed.status_code == 200, placed.text
    async with world.container.db.transaction() as conn:  # what migration 0004 does
        await conn.execute(
            sql(
                sa.update(idempotency_keys)
                .where(idempotency_keys.c.key == sa.bindparam("key"))
                .values(fingerprint="")
            ),
            key=key,
        )

    repeat = await world.http.post(
        f"/v1/orders/{order_id}/place", json={"card_number": SUCCESS_CARD}, headers=keyed
    )

    assert repeat.headers["idempotent-replayed"] == "true"
    assert repeat.content == placed.content


async def test_an_access_token_is_never_stored_under_an_idempotency_key(world: World) -> None:
    customer = await register(world.http)
    key = unique("k")
    body = {"email": customer.email, "password": "correct horse battery"}

    answers = [
        await world.http.post("/v1/auth/token", json=body, headers={"Idempotency-Key": key})
        for _ in range(2)
    ]

    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        assert "idempotent-replayed" not in answer.headers
    assert await _stored(world, key) == []
    async with world.container.db.connection() as conn:
        kept = await conn.fetch(sql(sa.select(idempotency_keys.c.response_body)))
    tokens = [a.json()["access_token"].encode() for a in answers]
    assert not any(t in bytes(r["response_body"] or b"") for r in kept for t in tokens)
