"""PostgreSQL: the checkout's statements that span modules: phase 1's lock of the order with
its customer's state, and phase 3 (settle) as one statement for the request that began it.

The request that opened a checkout knows everything settling it writes: the order as phase 1
froze it (and its version), the pending payment, and the provider's answer. So instead of the
eight round trips of a transaction that locks and reads the order, then writes the payment, the
reservations with their stock counters, the order and the outbox, it sends one statement of
data-modifying CTEs, guarded by the order's version, outside an explicit transaction:
PostgreSQL runs a lone statement as a transaction of its own, all of it or none of it.

These statements name the tables of the customers, catalog and payments modules and of the
outbox: this is the one place where the checkout's coordinator reads or writes them directly,
each part mirroring that module's own statement (the customers' share-locked check of
``active``, (``PaymentRepository``'s status-guarded update, the catalog's
``_move_at_once``, ``outbox.append``). When the guard does not hold (anyone else settled or
changed the order since phase 1), it writes nothing and the caller settles through the
modules' facades as the reconciler does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from mercato.kernel.events import DomainEvent
from mercato.orders.domain import Order
from mercato.payments import Payment
from mercato.platform import outbox
from mercato.platform.db import Connection, sql

# Phase 1's first statement: the order locked with its lines (as ``_LOCK`` in the repository:
# the lines are current unless ``version`` differs from ``seen_version``, the order's version in
# the statement's own snapshot), and whether its customer is active, the customer's row
# share-locked until commit so a deactivation waits for this checkout (as the customers
# module's own check locks it). Both rows are locked, so both are returned as committed when
# the lock was granted, even after a wait. No row: the order or its customer is missing.
_LOCK_WITH_CUSTOMER = sql(
    sa.text(
        """
        SELECT o.*, seen.version AS seen_version, c.active AS customer_active,
               l.product_id, l.position, l.sku, l.name, l.unit_price, l.quantity,
               l.weight_grams
        FROM orders_orders o
        JOIN orders_orders seen ON seen.id = o.id
        JOIN customers_customers c ON c.id = o.customer_id
        LEFT JOIN orders_lines l ON l.order_id = o.id
        WHERE o.id = :id
        ORDER BY l.position
        FOR UPDATE OF o FOR SHARE OF c
        """
    )
)

# Phase 1's last statement: the pending payment's row (``opened``, refused by the partial unique
# index if the order has a live payment already) and the columns of the order that starting a
# checkout changes (totals, the payment, the version). It only writes: the order's row is
# locked by this transaction since its first statement, so the version guard always holds (a
# second line of defence, as in every order save); a guard that failed would roll the whole
# transaction back, payment row included.
_BEGIN = sql(
    sa.text(
        """
        WITH opened AS (
            INSERT INTO payments_payments
                (id, order_id, amount, currency, status, provider, idempotency_key,
                 card_last4, provider_reference, failure_reason, created_at, updated_at)
            VALUES (:payment_id, :order_id, :amount, :currency, :payment_status, :provider,
                    :idempotency_key, :card_last4, :provider_reference, :failure_reason,
                    CAST(:opened_at AS timestamptz), CAST(:opened_at AS timestamptz))
        )
        UPDATE orders_orders
        SET subtotal = :subtotal, discount = :discount, shipping = :shipping, tax = :tax,
            total = :total, checkout_payment_id = :payment_id,
            updated_at = CAST(:updated_at AS timestamptz), version = :version
        WHERE id = :order_id AND version = :expected_version
        """
    )
)

# Read top to bottom; each CTE runs only if the one before it produced its row, so the statement
# writes everything or nothing, and takes its locks in the order every settle takes them (the
# order, its payment, its reservations, their products in product-id order):
#   gate     - the order row, locked, if it is still the checkout phase 1 left: same version,
#              same pending payment. A lock that waited re-checks both on the newest committed
#              row (READ COMMITTED re-evaluates a locking read's conditions on the row it
#              waited for), so a settle committed meanwhile by the reconciler or the sweeper
#              leaves the gate empty. Nothing is read from any other row without a lock or a
#              guarded update, so nothing here can be stale after a wait;
#   paid     - the payment's answer, only if it is still pending (the same guard as
#              PaymentRepository's update; an update that waited re-checks it on the newest row;
#              written IS NOT DISTINCT FROM, status being NOT NULL, so it is a filter on the row
#              the primary key finds: as "status = 'pending'" PostgreSQL may find the row
#              through the status index instead, visiting every pending payment, which is the
#              slowest exactly when payments pile up unsettled);
#   settled  - the order placed or back to an editable draft, at the version phase 1 + 1;
#   moved    - the order's active reservations committed (sold) or released;
#   locked   - their products, row-locked in product-id order, as every multi-product
#              statement locks them (no two transactions wait on each other crosswise);
#   counted  - each product's counters moved by its reservation's quantity: reserved to sold
#              when captured, reserved back to available otherwise (an UPDATE re-reads the
#              counters of a row it waited for, so concurrent reservations are never lost);
#   recorded - the events, in order, in the outbox; its trigger NOTIFYs at commit.
# The result says whether the order was settled and how many products moved.
_SETTLE = sql(
    sa.text(
        """
        WITH gate AS MATERIALIZED (
            SELECT o.id FROM orders_orders o
            WHERE o.id = :order_id AND o.version = :expected_version
              AND o.checkout_payment_id = :payment_id
            FOR UPDATE
        ), paid AS (
            UPDATE payments_payments
            SET status = :payment_status, card_last4 = :card_last4,
                provider_reference = :provider_reference, failure_reason = :failure_reason,
                updated_at = CAST(:now AS timestamptz)
            WHERE id = :payment_id AND status IS NOT DISTINCT FROM 'pending'
              AND EXISTS (SELECT 1 FROM gate)
            RETURNING id
        ), settled AS (
            UPDATE orders_orders
            SET status = :status, placed_at = CAST(:placed_at AS timestamptz),
                checkout_payment_id = NULL, updated_at = CAST(:now AS timestamptz),
                version = :version
            WHERE id = :order_id AND EXISTS (SELECT 1 FROM paid)
            RETURNING id
        ), moved AS (
            UPDATE catalog_reservations
            SET state = :to_state
            WHERE order_id = :order_id AND state = 'active' AND EXISTS (SELECT 1 FROM settled)
            RETURNING product_id, quantity
        ), locked AS (
            SELECT p.id FROM catalog_products p
            WHERE p.id IN (SELECT product_id FROM moved)
            ORDER BY p.id
            FOR UPDATE
        ), counted AS (
            UPDATE catalog_products p
            SET reserved = p.reserved - m.quantity,
                sold = p.sold + CASE WHEN :captured THEN m.quantity ELSE 0 END,
                available = p.available + CASE WHEN :captured THEN 0 ELSE m.quantity END
            FROM moved m JOIN locked l ON l.id = m.product_id
            WHERE p.id = m.product_id
            RETURNING p.id
        ), recorded AS (
            INSERT INTO platform_outbox
                (aggregate_type, aggregate_id, event_type, payload, occurred_at)
            SELECT e.aggregate_type, e.aggregate_id, e.event_type, e.payload,
                   CAST(:now AS timestamptz)
            FROM unnest(CAST(:aggregate_types AS text[]), CAST(:aggregate_ids AS text[]),
                        CAST(:event_types AS text[]), CAST(:payloads AS text[]))
                 WITH ORDINALITY AS e(aggregate_type, aggregate_id, event_type, payload, n)
            WHERE EXISTS (SELECT 1 FROM settled)
            ORDER BY e.n
        )
        SELECT (SELECT count(*) FROM settled) AS settled,
               (SELECT count(*) FROM counted) AS moved
        """
    )
)


async def settle_at_once(
    conn: Connection,
    order: Order,
    *,
    expected_version: int,
    payment: dict[str, str],
    captured: bool,
    events: Sequence[DomainEvent],
    now: datetime,
) -> bool:
    """Write a settled checkout in one statement if the order is still at
    ``expected_version`` in checkout with ``payment["id"]``; False (nothing written) otherwise.

    ``order`` is the order as settling left it (placed, or a draft again); ``payment`` the
    payment's id and the columns its answer sets.
    """
    assert order.checkout_payment_id is None, "the order must be settled before it is written"
    row = await conn.fetchrow(
        _SETTLE,
        order_id=order.id,
        expected_version=expected_version,
        payment_id=payment["id"],
        payment_status=payment["status"],
        card_last4=payment["card_last4"],
        provider_reference=payment["provider_reference"],
        failure_reason=payment["failure_reason"],
        status=order.status.value,
        placed_at=order.placed_at,
        version=order.version,
        to_state="committed" if captured else "released",
        captured=captured,
        now=now,
        **outbox.columns(events),
    )
    return row is not None and row["settled"] == 1


async def begin_at_once(
    conn: Connection, order: Order, payment: Payment, *, expected_version: int
) -> bool:
    """Insert the checkout's pending payment and write the order's checkout columns in one
    statement; False if the order was not at ``expected_version`` (the caller must then roll
    the transaction back)."""
    totals = order.totals
    changed = await conn.execute(
        _BEGIN,
        payment_id=payment.id,
        order_id=order.id,
        amount=payment.amount.amount,
        currency=payment.amount.currency,
        payment_status=payment.status.value,
        provider=payment.provider,
        idempotency_key=payment.idempotency_key,
        card_last4=payment.card_last4,
        provider_reference=payment.provider_reference,
        failure_reason=payment.failure_reason,
        opened_at=payment.created_at,
        subtotal=totals.subtotal.amount,
        discount=totals.discount.amount,
        shipping=totals.shipping.amount,
        tax=totals.tax.amount,
        total=totals.total.amount,
        updated_at=order.updated_at,
        version=order.version,
        expected_version=expected_version,
    )
    return changed == 1
