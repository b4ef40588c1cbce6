"""Settling a payment finds its row by primary key, however many payments are pending.

The statistics say what was true when the table was last analysed: pending payments are
rare, settled within milliseconds. When many pile up unsettled (a provider's outage, a
reconciler's backlog), a guard written ``status = 'pending'`` lets PostgreSQL reach the row
through the status index and visit every pending payment on each settle, exactly when the
backlog has to drain. Both statements that settle a payment must use the primary key.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mercato.bootstrap import Container
from mercato.orders.store import checkout
from mercato.payments import store
from mercato.platform.db import Statement
from tests.integration.helpers import plan_access

pytestmark = pytest.mark.anyio

_PAYMENTS = """
INSERT INTO payments_payments (id, order_id, amount, currency, status, provider,
    idempotency_key, card_last4, provider_reference, failure_reason, created_at, updated_at)
SELECT '{prefix}' || n, '{prefix}o' || n, 100, 'EUR', '{status}', 'sandbox',
       '{prefix}k' || n, '4242', '', '', now(), now()
FROM generate_series(1, {count}) AS n
"""


async def _plans(container: Container, stmt: Statement, **params: Any) -> list[set[str]]:
    compiled = stmt.compiled("postgresql")
    seen = []
    async with container.db.transaction() as conn:
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute_text(f"SET LOCAL plan_cache_mode = {mode}")
            text = await conn.raw.fetchval(
                "EXPLAIN (FORMAT JSON) " + compiled.text, *compiled.args(params)
            )
            seen.append(plan_access(json.loads(text), "payments_payments"))
    return seen


async def test_settling_uses_the_primary_key_while_payments_pile_up_pending(
    container: Container, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL's planner; SQLite's is another matter")
    async with container.db.connection() as conn:
        await conn.execute_text(_PAYMENTS.format(prefix="plan-c", status="captured", count=3000))
        await conn.execute_text("ANALYZE payments_payments")  # pending: rare, as usual
        await conn.execute_text(_PAYMENTS.format(prefix="plan-p", status="pending", count=500))

    repository = await _plans(
        container,
        store._UPDATE,
        id="plan-p7",
        expected_status="pending",
        status="captured",
        card_last4="4242",
        provider_reference="ref",
        failure_reason="",
        updated_at=None,
    )
    settle = await _plans(
        container,
        checkout._SETTLE,
        order_id="plan-po7",
        expected_version=2,
        payment_id="plan-p7",
        payment_status="captured",
        card_last4="4242",
        provider_reference="ref",
        failure_reason="",
        status="placed",
        placed_at=None,
        version=3,
        to_state="committed",
        captured=True,
        now=None,
        aggregate_types=[],
        aggregate_ids=[],
        event_types=[],
        payloads=[],
    )
    assert repository == [{"pk_payments_payments"}] * 2
    assert settle == [{"pk_payments_payments"}] * 2
