"""A randomized concurrent workload against real mercato processes.

Shoppers (several tasks per customer, as if on several devices) edit a few hot drafts, place
them with good, declined and failing cards, with and without Idempotency-Keys (some sent twice
at once, some retried later) and cancel them; staff confirm, ship, deliver and cancel paid
orders and adjust the stock of a few scarce products; intruders and hostile clients send what
must be refused. Halfway through, staff deactivate a customer and a second staff account,
whose tokens must stop working at once. Every answer is noted in a :class:`Ledger`; the
invariants (``invariants.py``, ``checkout_invariants.py``) are checked against it afterwards.

Each task draws from its own ``random.Random`` seeded from the run's seed and the task's name,
so a seed reproduces the same choices (not the same interleaving, which the scheduler decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mercato.platform.security import ACCOUNT_CACHE_S
from tests.conftest import unique
from tests.e2e.helpers import DECLINED_CARD, ERROR_CARD, SUCCESS_CARD
from tests.e2e.ledger import Customer, Edit, Ledger, Shop, code_of, line_quantities, not_yet
from tests.e2e.server import server_env

HOME = {"street": "Hauptstrasse 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}
ABROAD = {"street": "Rue de Rivoli 1", "city": "Paris", "postal_code": "75001", "country": "FR"}
CARDS = (SUCCESS_CARD, DECLINED_CARD, ERROR_CARD)
CARD_WEIGHTS = (6, 2, 2)
SHOPPERS_PER_CUSTOMER = 3
STAFF_TASKS = 3
STOCK_KEEPERS = 2
INTRUDERS = 2


@contextlib.contextmanager
def running_worker(database_url: str, log_dir: Path, **extra: str) -> Iterator[Path]:
    """``mercato worker`` (relay, reconciler, sweeper) in a child process; SIGTERM afterwards."""
    log = log_dir / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mercato", "worker"],
            env=server_env(database_url, **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Slot:
    """A customer's hot draft: the one their shopper tasks all work on until it leaves draft."""

    customer: Customer
    order_id: str
    version: int = 1
    lines: dict[str, int] = field(default_factory=dict)
    renewing: bool = False

    def seen(self, body: dict[str, Any]) -> None:
        """Remember the newest state of the draft this slot holds."""
        if body.get("id") == self.order_id and int(body["version"]) >= self.version:
            self.version = int(body["version"])
            self.lines = line_quantities(body)


class Workload:
    """The clients, the hot drafts, the paid orders, and the ledger of what they were told."""

    def __init__(self, shop: Shop, clients: list[httpx.AsyncClient], *, seconds: float) -> None:
        self.shop = shop
        self.clients = clients
        self.ledger = Ledger()
        self.slots: list[Slot] = []
        self.paid: list[tuple[str, Customer]] = []
        # Authorization -> (whose, when their deactivation was answered)
        self.revoked: dict[str, tuple[str, float]] = {}
        self.seconds = seconds
        self.stop_at = asyncio.get_running_loop().time() + seconds

    def running(self) -> bool:
        return asyncio.get_running_loop().time() < self.stop_at

    def refusals(self, headers: dict[str, str]) -> set[int]:
        """How a request of a deactivated account may be refused (none for anyone else)."""
        return {401, 403} if headers.get("Authorization") in self.revoked else set()

    async def send(
        self,
        rng: random.Random,
        method: str,
        path: str,
        headers: dict[str, str],
        body: Any = None,
        *,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One request to a server chosen at random; the answer is noted in the ledger."""
        client = rng.choice(self.clients)
        if content is not None:
            headers = {**headers, "Content-Type": "application/json"}
        sent = asyncio.get_running_loop().time()
        response = await client.request(method, path, headers=headers, json=body, content=content)
        self.ledger.note(response)
        whose, revoked = self.revoked.get(headers.get("Authorization", ""), ("", sent))
        # another process may remember the account as it was for ACCOUNT_CACHE_S, not longer
        if sent > revoked + ACCOUNT_CACHE_S and response.is_success:
            self.ledger.deactivated.append(
                f"{whose}, deactivated, still {method} {path}: {response.status_code}, "
                f"sent {sent - revoked:.2f} s after the deactivation was answered"
            )
        return response

    # -- drafts -------------------------------------------------------------------------------

    async def new_draft(self, customer: Customer, rng: random.Random) -> dict[str, Any] | None:
        """A fresh draft with a line or two and (mostly) an address, recorded as created."""
        picked = rng.sample(self.shop.products, rng.randint(1, 2))
        body: dict[str, Any] = {
            "lines": [{"product_id": p, "quantity": rng.randint(1, 2)} for p in picked]
        }
        if rng.random() < 0.85:
            body["shipping_address"] = rng.choice((HOME, ABROAD))
        made = await self.send(rng, "POST", "/v1/orders", customer.headers, body)
        self.ledger.expect(made, {201} | self.refusals(customer.headers), "starting a draft")
        if made.status_code != 201:
            return None
        created: dict[str, Any] = made.json()
        self.ledger.created[created["id"]] = created
        return created

    async def open_slots(self, rng: random.Random) -> None:
        for customer in self.shop.customers:
            created = await self.new_draft(customer, rng)
            assert created is not None, "could not start the first drafts"
            slot = Slot(customer, created["id"])
            slot.seen(created)
            self.slots.append(slot)

    async def renew(self, slot: Slot, old_id: str, rng: random.Random) -> None:
        """The slot's draft left draft (placed or cancelled): the customer starts another."""
        if slot.order_id != old_id or slot.renewing:
            return
        slot.renewing = True
        try:
            created = await self.new_draft(slot.customer, rng)
            if created is not None:
                slot.order_id, slot.version, slot.lines = created["id"], 0, {}
                slot.seen(created)
        finally:
            slot.renewing = False

    async def refresh(self, slot: Slot, order_id: str, rng: random.Random) -> None:
        got = await self.send(rng, "GET", f"/v1/orders/{order_id}", slot.customer.headers)
        if got.status_code == 200:
            slot.seen(got.json())
            if got.json()["status"] != "draft":
                await self.renew(slot, order_id, rng)

    async def after(
        self, slot: Slot, order_id: str, answers: list[httpx.Response], rng: random.Random
    ) -> None:
        """Follow the draft: remember what was answered, start a new one when it is gone."""
        codes = {code_of(a) for a in answers}
        for answer in answers:
            if answer.status_code == 200:
                slot.seen(answer.json())
        if codes & {"order_not_draft", "order_conflict", "invalid_transition"}:
            await self.refresh(slot, order_id, rng)

    def if_match(self, slot: Slot, rng: random.Random, chance: float = 0.3) -> dict[str, str]:
        """The customer's headers, with If-Match of the last version seen some of the time."""
        headers = dict(slot.customer.headers)
        if rng.random() < chance:
            headers["If-Match"] = f'"{slot.version}"'
        return headers

    async def edit(
        self,
        slot: Slot,
        rng: random.Random,
        method: str,
        suffix: str,
        body: dict[str, Any] | None,
        what: tuple[str, str | None, int | None, str | None],
    ) -> None:
        """Send one draft edit; an answer of 200 goes into the ledger with its version."""
        kind, product_id, quantity, value = what
        order_id = slot.order_id
        path = f"/v1/orders/{order_id}{suffix}"
        answer = await self.send(rng, method, path, self.if_match(slot, rng), body)
        if answer.status_code == 200:
            got = answer.json()
            self.ledger.edits.append(
                Edit(
                    order_id,
                    int(got["version"]),
                    kind,
                    product_id,
                    quantity,
                    value,
                    line_quantities(got),
                    f"{method} {path} {body}",
                )
            )
        await self.after(slot, order_id, [answer], rng)

    # -- what shoppers do -----------------------------------------------------------------------

    async def add_line(self, slot: Slot, rng: random.Random) -> None:
        product, qty = rng.choice(self.shop.products), rng.randint(1, 2)
        body = {"product_id": product, "quantity": qty}
        await self.edit(slot, rng, "POST", "/lines", body, ("add", product, qty, None))

    def some_line(self, slot: Slot, rng: random.Random) -> str:
        """A product the draft had when last seen (mostly), else any product."""
        if slot.lines and rng.random() < 0.9:
            return rng.choice(sorted(slot.lines))
        return rng.choice(self.shop.products)

    async def set_quantity(self, slot: Slot, rng: random.Random) -> None:
        product, qty = self.some_line(slot, rng), rng.randint(1, 3)
        body = {"quantity": qty}
        await self.edit(slot, rng, "PUT", f"/lines/{product}", body, ("set", product, qty, None))

    async def remove_line(self, slot: Slot, rng: random.Random) -> None:
        product = self.some_line(slot, rng)
        await self.edit(
            slot, rng, "DELETE", f"/lines/{product}", None, ("remove", product, None, None)
        )

    async def set_address(self, slot: Slot, rng: random.Random) -> None:
        address = rng.choice((HOME, ABROAD))
        body = {"shipping_address": address}
        what = ("address", None, None, address["country"])
        await self.edit(slot, rng, "PUT", "/addresses", body, what)

    async def discount(self, slot: Slot, rng: random.Random) -> None:
        if rng.random() < 0.6:
            body = {"code": "WELCOME10"}
            await self.edit(
                slot, rng, "PUT", "/discount", body, ("discount", None, None, "WELCOME10")
            )
        else:
            await self.edit(slot, rng, "DELETE", "/discount", None, ("discount", None, None, None))

    async def place(self, slot: Slot, rng: random.Random) -> None:
        """Place the draft; with a key, sometimes twice at once and sometimes once more later."""
        order_id, customer = slot.order_id, slot.customer
        path = f"/v1/orders/{order_id}/place"
        body = {"card_number": rng.choices(CARDS, CARD_WEIGHTS)[0]}
        headers = self.if_match(slot, rng, 0.2)
        key = unique("key") if rng.random() < 0.6 else None
        if key:
            headers["Idempotency-Key"] = key
        at_once = 2 if key and rng.random() < 0.4 else 1
        send = [self.send(rng, "POST", path, headers, body) for _ in range(at_once)]
        answers = list(await asyncio.gather(*send))
        if key and rng.random() < 0.3:
            answers.append(await self.send(rng, "POST", path, headers, body))
        if key:
            self.ledger.keyed.append((f"POST {path} {body} Idempotency-Key {key}", answers))
            if rng.random() < 0.15:
                await self.reuse_key(path, headers, body, answers, rng)
        placed = [a.json() for a in answers if a.status_code == 200]
        if placed:
            self.ledger.placed.setdefault(order_id, []).extend(placed)
            self.paid.append((order_id, customer))
            await self.renew(slot, order_id, rng)
        await self.after(slot, order_id, answers, rng)

    async def reuse_key(
        self,
        path: str,
        headers: dict[str, str],
        body: dict[str, str],
        answers: list[httpx.Response],
        rng: random.Random,
    ) -> None:
        """The same Idempotency-Key with another card, after a final answer: refused. (After
        only not-yet answers the key was never kept, and may start another request.)"""
        if not all(not_yet(a) for a in answers):
            card = DECLINED_CARD if body["card_number"] == SUCCESS_CARD else SUCCESS_CARD
            reused = await self.send(rng, "POST", path, headers, {"card_number": card})
            expected = {422} | self.refusals(headers)
            self.ledger.expect(reused, expected, "an Idempotency-Key reused for another body")

    async def cancel(self, slot: Slot, rng: random.Random) -> None:
        """The customer cancels their draft or one of their paid orders."""
        mine = [order for order, owner in self.paid if owner is slot.customer]
        order_id = rng.choice(mine) if mine and rng.random() < 0.6 else slot.order_id
        path = f"/v1/orders/{order_id}/cancel"
        answer = await self.send(rng, "POST", path, self.if_match(slot, rng, 0.1), {"reason": "x"})
        if order_id == slot.order_id:
            if answer.status_code == 200:
                await self.renew(slot, order_id, rng)
            await self.after(slot, order_id, [answer], rng)

    async def shopper(self, customer: Customer, rng: random.Random) -> None:
        actions: list[tuple[Callable[[Slot, random.Random], Awaitable[None]], int]] = [
            (self.add_line, 8),
            (self.set_quantity, 6),
            (self.remove_line, 3),
            (self.set_address, 2),
            (self.discount, 2),
            (self.place, 5),
            (self.cancel, 1),
        ]
        slot = next(s for s in self.slots if s.customer is customer)
        while self.running():
            action = rng.choices([a for a, _ in actions], [w for _, w in actions])[0]
            await action(slot, rng)
            if self.refusals(customer.headers):
                await asyncio.sleep(0.05)  # keep trying, but do not spin on refusals

    # -- what staff do ----------------------------------------------------------------------------

    async def fulfil(self, rng: random.Random, staff: dict[str, str]) -> None:
        """Confirm, ship, deliver or cancel a paid order, sometimes with If-Match."""
        while self.running():
            if not self.paid or rng.random() < 0.15:
                await self.staff_on_draft(rng, staff)
                await asyncio.sleep(0.01)
                continue
            order_id, _ = rng.choice(self.paid)
            action = rng.choices(("confirm", "ship", "deliver", "cancel"), (4, 3, 2, 1))[0]
            headers = dict(staff)
            if rng.random() < 0.3:
                got = await self.send(rng, "GET", f"/v1/orders/{order_id}", staff)
                if got.status_code == 200:
                    headers["If-Match"] = f'"{got.json()["version"]}"'
            body = {"ship": {"tracking_code": "TRACK1"}, "cancel": {"reason": "staff"}}.get(action)
            await self.send(rng, "POST", f"/v1/orders/{order_id}/{action}", headers, body)

    async def staff_on_draft(self, rng: random.Random, staff: dict[str, str]) -> None:
        """Staff cancel a hot draft, or try to edit one (only its owner may)."""
        slot = rng.choice(self.slots)
        order_id = slot.order_id
        if rng.random() < 0.3:
            path = f"/v1/orders/{order_id}/cancel"
            answer = await self.send(rng, "POST", path, staff, {"reason": "staff"})
            if answer.status_code == 200:
                await self.renew(slot, order_id, rng)
            return
        body = {"product_id": rng.choice(self.shop.products), "quantity": 1}
        path = f"/v1/orders/{order_id}/lines"
        answer = await self.send(rng, "POST", path, staff, body)
        refused = {403} | self.refusals(staff)
        self.ledger.expect(answer, refused, "staff may not edit a customer's draft")

    async def keep_stock(self, rng: random.Random) -> None:
        """Staff count the shelves: small corrections up and down on the scarce products."""
        while self.running():
            product = rng.choice(self.shop.products)
            body = {"delta": rng.choice((-2, -1, 1, 1, 2, 3)), "reason": "shelf count"}
            path = f"/v1/products/{product}/stock-adjustments"
            answer = await self.send(rng, "POST", path, self.shop.staff, body)
            if answer.status_code == 201:
                self.ledger.adjusted[product] += body["delta"]
            await asyncio.sleep(rng.uniform(0.05, 0.2))

    # -- what must be refused -------------------------------------------------------------------

    async def intrude(self, rng: random.Random) -> None:
        """Another customer (or nobody) reads and changes someone's order: it must not exist."""
        slot = rng.choice(self.slots)
        order_id, owner = slot.order_id, slot.customer
        if self.paid and rng.random() < 0.3:
            order_id, owner = rng.choice(self.paid)
        others = [c for c in self.shop.customers[:-1] if c is not owner]
        intruder = rng.choice(others).headers if rng.random() < 0.8 else {}
        method, suffix, body = rng.choice(
            (
                ("GET", "", None),
                ("POST", "/lines", {"product_id": rng.choice(self.shop.products), "quantity": 1}),
                ("PUT", "/discount", {"code": "WELCOME10"}),
                ("POST", "/place", {"card_number": SUCCESS_CARD}),
                ("POST", "/cancel", {"reason": "mine now"}),
            )
        )
        answer = await self.send(rng, method, f"/v1/orders/{order_id}{suffix}", intruder, body)
        expected = {404} if intruder else {401}
        if intruder and suffix == "/discount":
            # every simulated shopper guesses codes from 127.0.0.1: once that address is past
            # its limit, any code is refused with 429 before anything is judged, which tells an
            # intruder nothing about the order
            expected.add(429)
        self.ledger.expect(answer, expected, "only an order's owner and staff may touch it")

    def hostile_requests(self, product: str) -> list[tuple[str, str, Any, set[int], str | None]]:
        """(method, path suffix, body, statuses, field) of bad input on a customer's own draft."""
        country = {**HOME, "country": "DEU"}
        return [
            ("POST", "/lines", {"product_id": product, "quantity": 0}, {422}, "quantity"),
            ("POST", "/lines", {"product_id": product, "quantity": "2"}, {422}, "quantity"),
            ("POST", "/lines", {"product_id": product, "quantity": 10**12}, {422}, "quantity"),
            ("POST", "/lines", {"product_id": "x" * 40, "quantity": 1}, {422}, "product_id"),
            ("POST", "/lines", {"product_id": product, "quantity": 1, "price": 0}, {422}, "price"),
            ("POST", "/lines", {"product_id": unique("p"), "quantity": 1}, {404, 422}, None),
            ("POST", "/lines", b'{"product_id": ', {400}, None),
            ("PUT", f"/lines/{product}", {"quantity": -1}, {422}, "quantity"),
            # guessing codes may be throttled: 429, also a refusal
            ("PUT", "/discount", {"code": "FREE100"}, {422, 429}, "discount_code"),
            ("POST", "/place", {"card_number": "1234"}, {422}, "card_number"),
            ("PUT", "/addresses", {"shipping_address": country}, {422}, "shipping_address.country"),
        ]

    async def hostile(self, rng: random.Random) -> None:
        """Bad input on the customer's own draft: a 4xx problem naming the field."""
        slot = rng.choice(self.slots[:-1])  # not the account that is deactivated
        cases = self.hostile_requests(rng.choice(self.shop.products))
        method, suffix, body, statuses, name = rng.choice(cases)
        headers = dict(slot.customer.headers)
        if rng.random() < 0.1:
            headers["If-Match"], statuses, name = "abc", {422}, "If-Match"
            method, suffix = "POST", "/lines"
            body = {"product_id": rng.choice(self.shop.products), "quantity": 1}
        path = f"/v1/orders/{slot.order_id}{suffix}"
        if isinstance(body, bytes):
            answer = await self.send(rng, method, path, headers, content=body)
        else:
            answer = await self.send(rng, method, path, headers, body)
        self.ledger.expect(answer, statuses, "bad input is refused")
        if name and answer.status_code == 422 and answer.json().get("field") != name:
            self.ledger.violations.append(
                f"bad input {method} {path} {body!r}: the problem names field "
                f"{answer.json().get('field')!r}, not {name!r}"
            )

    async def revoke(self, rng: random.Random) -> None:
        """Halfway through, staff deactivate a customer and a colleague, mid-flight."""
        await asyncio.sleep(self.seconds * rng.uniform(0.3, 0.6))
        accounts = {"customer": self.shop.customers[-1], "staff member": self.shop.deputy}
        for role, account in accounts.items():
            path = f"/v1/customers/{account.id}/deactivate"
            answer = await self.send(rng, "POST", path, self.shop.staff)
            self.ledger.expect(answer, {200}, "staff deactivate an account")
            if answer.status_code == 200:
                when = asyncio.get_running_loop().time()
                self.revoked[account.headers["Authorization"]] = (f"{role} {account.id}", when)

    async def trespasser(self, rng: random.Random) -> None:
        while self.running():
            await (self.intrude(rng) if rng.random() < 0.5 else self.hostile(rng))
            await asyncio.sleep(0.02)


async def run_workload(
    shop: Shop, clients: list[httpx.AsyncClient], *, seed: int, seconds: float
) -> Ledger:
    """Drive every kind of client at once for ``seconds``; the ledger of what they were told."""
    workload = Workload(shop, clients, seconds=seconds)
    await workload.open_slots(random.Random(f"{seed}:open"))
    workload.stop_at = asyncio.get_running_loop().time() + seconds

    def rng(name: str) -> random.Random:
        return random.Random(f"{seed}:{name}")

    tasks = [
        workload.shopper(customer, rng(f"shopper:{i}:{j}"))
        for i, customer in enumerate(shop.customers)
        for j in range(SHOPPERS_PER_CUSTOMER)
    ]
    tasks += [workload.fulfil(rng(f"staff:{i}"), shop.staff) for i in range(STAFF_TASKS)]
    tasks += [workload.fulfil(rng("deputy"), shop.deputy.headers), workload.revoke(rng("revoke"))]
    tasks += [workload.keep_stock(rng(f"stock:{i}")) for i in range(STOCK_KEEPERS)]
    tasks += [workload.trespasser(rng(f"trespasser:{i}")) for i in range(INTRUDERS)]
    await asyncio.gather(*tasks)
    return workload.ledger
