"""The dashboard: today's orders and revenue, work waiting, low stock, failed payments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mercato.console.views import StaffSession, parent, render
from mercato.kernel.clock import utcnow
from mercato.kernel.money import Money
from mercato.orders import Order, Status
from mercato.platform.pagination import Page
from mercato.platform.security import Principal

router = APIRouter()

LOW_STOCK = 5  # available units at or below which a product is listed as running low
PAGE = 100
MAX_PAGES = 50  # a dashboard reads at most 5,000 rows of a kind; more shows as "5000+"


@dataclass(frozen=True, slots=True)
class Count:
    value: int
    complete: bool

    def __str__(self) -> str:
        return str(self.value) if self.complete else f"{self.value}+"


async def _pages(
    fetch: Callable[[str | None], Awaitable[Page[object]]],
    keep: Callable[[object], bool] = lambda item: True,
    stop: Callable[[object], bool] = lambda item: False,
) -> tuple[list[object], bool]:
    """Items of successive pages that ``keep`` accepts, until ``stop`` or the last page."""
    found: list[object] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(cursor)
        for item in page.items:
            if stop(item):
                return found, True
            if keep(item):
                found.append(item)
        if page.next_cursor is None:
            return found, True
        cursor = page.items[-1].id  # type: ignore[attr-defined]
    return found, False


async def _orders(state: Any, who: Principal, status: Status | None) -> Count:
    orders = state.orders
    items, complete = await _pages(
        lambda before: orders.list_orders(
            who, status=status, customer_id=None, before=before, limit=PAGE
        )
    )
    return Count(len(items), complete)


async def _today(state: Any, who: Principal, since: datetime) -> tuple[Count, Money]:
    orders = state.orders
    currency: str = state.settings.currency
    items, complete = await _pages(
        lambda before: orders.list_orders(
            who, status=None, customer_id=None, before=before, limit=PAGE
        ),
        keep=lambda o: isinstance(o, Order) and o.status is not Status.DRAFT,
        stop=lambda o: isinstance(o, Order) and o.created_at < since,
    )
    revenue = Money.zero(currency)
    for order in items:
        assert isinstance(order, Order)
        if order.status is not Status.CANCELLED and order.totals and order.currency == currency:
            revenue = revenue + order.totals.total
    return Count(len(items), complete), revenue


async def _low_stock(state: Any) -> list[object]:
    catalog = state.catalog
    items, _ = await _pages(
        lambda after: catalog.list_products(text=None, after=after, limit=PAGE),
        keep=lambda p: getattr(p, "available", LOW_STOCK + 1) <= LOW_STOCK,
    )
    return items[:20]


@router.get("/")
async def dashboard(request: Request, session: StaffSession) -> Response:
    """Today at a glance."""
    state = parent(request)
    since = datetime.combine(utcnow().date(), time.min, tzinfo=utcnow().tzinfo)
    who = session.principal
    placed_today, revenue = await _today(state, who, since)
    return render(
        request,
        "dashboard.html",
        session=session,
        placed_today=placed_today,
        revenue=revenue,
        to_confirm=await _orders(state, who, Status.PLACED),
        to_ship=await _orders(state, who, Status.CONFIRMED),
        low_stock=await _low_stock(state),
        low_stock_level=LOW_STOCK,
        failed_payments=await state.container.payments.failed_since(since),
        since=since,
    )
