"""How many SQL statements the hot path runs: placing an order must not grow a round trip.

Every statement a unit of work sends is counted by wrapping the database the transactor uses
(the real driver still runs each one). The budget is what placing an order cost before the
orders module moved to repositories on the unit of work; a refactor may lower it, never raise
it.
"""

from __future__ import annotations

import pytest

from mercato.bootstrap import Container
from mercato.payments import SUCCESS_CARD
from tests.integration.counting import CountingDatabase
from tests.integration.helpers import customer, draft, product

pytestmark = pytest.mark.anyio

# Three lines at unchanged prices. Begin: lock the order, read its lines, check the customer,
# three guarded stock updates, the reservation rows, the payment, the order update. Settle: lock
# the order, read its lines, the payment update, the reservations and the stock sold, the order
# update, the outbox. Measured on both databases before the refactor: 16. On PostgreSQL the
# catalog reserves every line with its reservation rows in one statement, and moves an order's
# reservations together with their stock counters in one statement: 12. Then, on PostgreSQL,
# phase 1 locks the order with its lines and its customer's state in one statement, and the
# request settles its own checkout in one statement outside an explicit transaction, and phase 1
# writes the payment with the order's columns in one statement: 4 statements, 6 round trips
# with phase 1's BEGIN and COMMIT. SQLite reads the lines with the order too: 14.
PLACEMENT_BUDGET = {"sqlite": 14, "postgres": 4}
TRANSACTIONS = {"sqlite": 2, "postgres": 1}


async def test_placing_an_order_runs_no_more_statements_than_before(
    container: Container, backend: str
) -> None:
    owner = await customer(container)
    items = [await product(container, stock=10) for _ in range(3)]
    order = await draft(container, owner, {item.id: 1 + n for n, item in enumerate(items)})
    counting = CountingDatabase(container.db)
    container.transact.db = counting  # type: ignore[assignment]
    try:
        placed = await container.orders.place(owner, order.id, card_number=SUCCESS_CARD)
    finally:
        container.transact.db = counting._db
    assert placed.status.value == "placed"
    assert len(counting.sent) <= PLACEMENT_BUDGET[backend], "\n".join(counting.sent)
    assert counting.transactions <= TRANSACTIONS[backend]
