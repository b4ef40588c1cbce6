"""Stock on the unit of work: staff adjustments with their audit trail, and reservations.

Every stock movement is one guarded ``UPDATE``; none reads a counter and writes it back.
Statements that touch several products are run in product-id order so that two transactions
never wait on each other's rows in opposite orders.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn

import sqlalchemy as sa

from mercato.catalog.domain import (
    Adjustment,
    OutOfStock,
    ProductInactive,
    ProductNotFound,
    ReservedLine,
)
from mercato.catalog.store.tables import adjustments, line_from_row, products, reservations
from mercato.kernel.ids import new_id
from mercato.platform.db import Statement, sql
from mercato.platform.uow import Repository

_p = products.c
_r = reservations.c
_bind = sa.bindparam

_ADJUST = sql(
    sa.update(products)
    .where(_p.id == _bind("id"), _p.available + _bind("delta") >= 0)
    .values(available=_p.available + _bind("delta"))
    .returning(_p.available)
)
_INSERT_ADJUSTMENT = sql(
    sa.insert(adjustments).values({c.name: _bind(c.name) for c in adjustments.c})
)
_ADJUSTMENTS = sql(
    sa.select(adjustments)
    .where(adjustments.c.product_id == _bind("product_id"), adjustments.c.id > _bind("after"))
    .order_by(adjustments.c.id)
    .limit(_bind("limit"))
)
_RESERVE = sql(
    sa.update(products)
    .where(_p.id == _bind("id"), _p.active == sa.true(), _p.available >= _bind("qty"))
    .values(available=_p.available - _bind("qty"), reserved=_p.reserved + _bind("qty"))
    .returning(_p.id, _p.sku, _p.name, _p.price_amount, _p.currency, _p.weight_grams)
)
_STOCK_STATE = sql(sa.select(_p.active, _p.available).where(_p.id == _bind("id")))
_INSERT_RESERVATION = sql(
    sa.insert(reservations).values({c.name: _bind(c.name) for c in reservations.c})
)
_MOVE_RESERVATIONS = sql(
    sa.update(reservations)
    .where(_r.order_id == _bind("order_id"), _r.state == _bind("from_state"))
    .values(state=_bind("to_state"))
    .returning(_r.product_id, _r.quantity)
)
_EXPIRED_ORDERS = sql(
    sa.select(_r.order_id)
    .where(_r.state == "active", _r.expires_at < _bind("now"))
    .group_by(_r.order_id)
    .order_by(sa.func.min(_r.expires_at))
    .limit(_bind("limit"))
)
_COMMIT_STOCK = sql(
    sa.update(products)
    .where(_p.id == _bind("id"))
    .values(reserved=_p.reserved - _bind("qty"), sold=_p.sold + _bind("qty"))
)
_RELEASE_STOCK = sql(
    sa.update(products)
    .where(_p.id == _bind("id"))
    .values(reserved=_p.reserved - _bind("qty"), available=_p.available + _bind("qty"))
)
_RETURN_STOCK = sql(
    sa.update(products)
    .where(_p.id == _bind("id"))
    .values(sold=_p.sold - _bind("qty"), available=_p.available + _bind("qty"))
)


# PostgreSQL: reserve every line of an order in one round trip. Read top to bottom:
#   wanted   - the lines asked for, with the id each reservation row will get;
#   locked   - the products row-locked in product-id order (the order every multi-product
#              statement uses, so two checkouts never wait on each other's rows crosswise);
#   held     - the guarded update: only products that are active and have enough available
#              stock; a row changed since the statement began is re-checked at its newest
#              version before it is updated (PostgreSQL's EvalPlanQual), as a single-row
#              UPDATE would be;
#   recorded - the reservation rows for the products held.
# Fewer rows back than lines asked for means a refusal: the caller raises and its transaction
# rolls every part of this statement back (all or nothing).
_RESERVE_ALL = sql(
    sa.text(
        """
        WITH wanted AS (
            SELECT w.product_id, w.qty, w.reservation_id
            FROM unnest(CAST(:product_ids AS text[]), CAST(:quantities AS integer[]),
                        CAST(:reservation_ids AS text[])) AS w(product_id, qty, reservation_id)
        ), locked AS (
            SELECT p.id FROM catalog_products p
            WHERE p.id IN (SELECT product_id FROM wanted)
            ORDER BY p.id
            FOR UPDATE
        ), held AS (
            UPDATE catalog_products p
            SET available = p.available - w.qty, reserved = p.reserved + w.qty
            FROM wanted w JOIN locked l ON l.id = w.product_id
            WHERE p.id = w.product_id AND p.active AND p.available >= w.qty
            RETURNING p.id, p.sku, p.name, p.price_amount, p.currency, p.weight_grams, w.qty,
                      w.reservation_id
        ), recorded AS (
            INSERT INTO catalog_reservations
                (id, order_id, product_id, quantity, state, expires_at, created_at)
            SELECT h.reservation_id, CAST(:order_id AS varchar), h.id, h.qty, 'active',
                   CAST(:expires_at AS timestamptz), CAST(:now AS timestamptz)
            FROM held h
        )
        SELECT id, sku, name, price_amount, currency, weight_grams, qty FROM held ORDER BY id
        """
    )
)


def _move_at_once(counters: Callable[[Any], dict[str, Any]]) -> Statement:
    """PostgreSQL: move an order's reservations from one state to another and their units
    between stock counters in one round trip (named CTEs):

    ``moved``   - the order's reservations in ``from_state`` set to ``to_state``;
    ``locked``  - their products row-locked in product-id order (as every multi-product
                  statement locks them, so no two transactions wait on each other crosswise);
    ``counted`` - each product's counters changed by its reservation's quantity.
    """
    moved = (
        sa.update(reservations)
        .where(_r.order_id == _bind("order_id"), _r.state == _bind("from_state"))
        .values(state=_bind("to_state"))
        .returning(_r.product_id, _r.quantity)
        .cte("moved")
    )
    locked = (
        sa.select(_p.id)
        .where(_p.id.in_(sa.select(moved.c.product_id)))
        .order_by(_p.id)
        .with_for_update()
        .cte("locked")
    )
    counted = (
        sa.update(products)
        .where(_p.id == moved.c.product_id, locked.c.id == moved.c.product_id)
        .values(counters(moved.c.quantity))
        .returning(_p.id.label("product_id"), moved.c.quantity)
        .cte("counted")
    )
    return sql(sa.select(counted.c.product_id, counted.c.quantity).order_by(counted.c.product_id))


_COMMIT_ALL = _move_at_once(lambda qty: {"reserved": _p.reserved - qty, "sold": _p.sold + qty})
_RELEASE_ALL = _move_at_once(
    lambda qty: {"reserved": _p.reserved - qty, "available": _p.available + qty}
)
_RETURN_ALL = _move_at_once(lambda qty: {"sold": _p.sold - qty, "available": _p.available + qty})
_MOVE_ALL = {"committed": _COMMIT_ALL, "released": _RELEASE_ALL, "returned": _RETURN_ALL}


class StockRepository(Repository):
    """Stock counters, their audit trail and the reservations orders hold."""

    __slots__ = ()

    async def adjust(
        self, product_id: str, *, delta: int, reason: str, actor_id: str, now: datetime
    ) -> int:
        """Change available stock by ``delta`` and record why; returns the new available count."""
        available = await self.conn.fetchval(_ADJUST, id=product_id, delta=delta)
        if available is None:
            state = await self.conn.fetchrow(_STOCK_STATE, id=product_id)
            if state is None:
                raise ProductNotFound(product_id)
            # the request is well formed; the stock is not there (409, like reserving it)
            raise OutOfStock(product_id, requested=-delta, available=state["available"])
        await self.conn.execute(
            _INSERT_ADJUSTMENT,
            id=new_id(),
            product_id=product_id,
            delta=delta,
            reason=reason,
            actor_id=actor_id,
            available_after=available,
            created_at=now,
        )
        return int(available)

    async def adjustments(
        self, product_id: str, *, after: str | None, limit: int
    ) -> list[Adjustment]:
        """Up to ``limit`` adjustments of a product after ``after``, oldest first."""
        rows = await self.conn.fetch(
            _ADJUSTMENTS, product_id=product_id, after=after or "", limit=limit
        )
        return [Adjustment(**dict(r)) for r in rows]

    async def reserve(
        self, order_id: str, quantities: dict[str, int], *, expires_at: datetime, now: datetime
    ) -> list[ReservedLine]:
        """Reserve every line or raise (the caller's transaction then rolls all of it back)."""
        if self.conn.dialect == "postgresql":
            return await self._reserve_at_once(order_id, quantities, expires_at, now)
        reserved = [await self._hold(pid, quantities[pid]) for pid in sorted(quantities)]
        await self.conn.executemany(
            _INSERT_RESERVATION,
            (
                {
                    "id": new_id(),
                    "order_id": order_id,
                    "product_id": line.product_id,
                    "quantity": line.quantity,
                    "state": "active",
                    "expires_at": expires_at,
                    "created_at": now,
                }
                for line in reserved
            ),
        )
        return reserved

    async def _reserve_at_once(
        self, order_id: str, quantities: dict[str, int], expires_at: datetime, now: datetime
    ) -> list[ReservedLine]:
        ids = sorted(quantities)
        rows = await self.conn.fetch(
            _RESERVE_ALL,
            product_ids=ids,
            quantities=[quantities[pid] for pid in ids],
            reservation_ids=[new_id() for _ in ids],
            order_id=order_id,
            expires_at=expires_at,
            now=now,
        )
        if len(rows) != len(ids):
            held = {row["id"] for row in rows}
            refused = next(pid for pid in ids if pid not in held)
            await self._refuse(refused, quantities[refused])
        return [line_from_row(row, quantity=row["qty"]) for row in rows]

    async def _hold(self, product_id: str, qty: int) -> ReservedLine:
        row = await self.conn.fetchrow(_RESERVE, id=product_id, qty=qty)
        if row is None:
            await self._refuse(product_id, qty)
        return line_from_row(row, quantity=qty)

    async def _refuse(self, product_id: str, qty: int) -> NoReturn:
        state = await self.conn.fetchrow(_STOCK_STATE, id=product_id)
        if state is None:
            raise ProductNotFound(product_id)
        if not state["active"]:
            raise ProductInactive(product_id)
        raise OutOfStock(product_id, requested=qty, available=int(state["available"]))

    async def commit(self, order_id: str) -> list[tuple[str, int]]:
        """The order was paid: its active reservations become sold units."""
        return await self._move(order_id, "active", "committed", _COMMIT_STOCK)

    async def release(self, order_id: str) -> list[tuple[str, int]]:
        """The checkout failed or expired: its active reservations go back to available."""
        return await self._move(order_id, "active", "released", _RELEASE_STOCK)

    async def give_back(self, order_id: str) -> list[tuple[str, int]]:
        """A paid order was cancelled: its sold units go back to available."""
        return await self._move(order_id, "committed", "returned", _RETURN_STOCK)

    async def _move(
        self, order_id: str, from_state: str, to_state: str, counters: Statement
    ) -> list[tuple[str, int]]:
        if self.conn.dialect == "postgresql":
            rows = await self.conn.fetch(
                _MOVE_ALL[to_state], order_id=order_id, from_state=from_state, to_state=to_state
            )
            return [(r["product_id"], int(r["quantity"])) for r in rows]
        rows = await self.conn.fetch(
            _MOVE_RESERVATIONS, order_id=order_id, from_state=from_state, to_state=to_state
        )
        moved = sorted((r["product_id"], int(r["quantity"])) for r in rows)
        await self.conn.executemany(counters, ({"id": pid, "qty": qty} for pid, qty in moved))
        return moved

    async def expired_orders(self, *, now: datetime, limit: int) -> list[str]:
        """Orders holding active reservations that expired before ``now``, oldest first."""
        rows = await self.conn.fetch(_EXPIRED_ORDERS, now=now, limit=limit)
        return [r["order_id"] for r in rows]
