"""Orders: the live list, one order with its history, and the actions its state allows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from mercato.console.views import FormSession, StaffSession, errors_of, parent, render
from mercato.kernel.errors import Conflict, DomainError, InvalidValue
from mercato.orders import Order, OrderNotFound, Status
from mercato.platform import event_log
from mercato.platform.pagination import decode_cursor
from mercato.platform.schemas import Text
from mercato.platform.security import Principal

router = APIRouter()
PAGE = 25
ACTIONS = {
    Status.PLACED: ("confirm", "cancel"),
    Status.CONFIRMED: ("ship", "cancel"),
    Status.SHIPPED: ("deliver",),
}


def _status(value: str | None) -> Status | None:
    if not value:
        return None
    try:
        return Status(value)
    except ValueError:
        raise InvalidValue(
            "invalid_status", f"status must be one of {', '.join(Status)}", field="status"
        ) from None


async def _find(
    state: Any, who: Principal, q: str, chosen: Status | None, before: str | None
) -> tuple[list[Order], str | None]:
    """A page of orders: all, or of the customer with e-mail ``q``, or the order with id ``q``."""
    customer_id = None
    if q and "@" in q:
        customer = await state.customers.find_by_email(q)
        if customer is None:
            return [], None
        customer_id = customer.id
    elif q:
        try:
            order: Order = await state.orders.get(who, q)
        except OrderNotFound:
            return [], None
        return ([order] if chosen in (None, order.status) else []), None
    page = await state.orders.list_orders(
        who, status=chosen, customer_id=customer_id, before=decode_cursor(before), limit=PAGE
    )
    return page.items, page.next_cursor


@router.get("/orders")
async def list_orders(
    request: Request,
    session: StaffSession,
    status: Annotated[Text | None, Query(max_length=20)] = None,
    q: Annotated[Text, Query(max_length=254)] = "",
    before: Annotated[Text | None, Query(max_length=200)] = None,
) -> Response:
    """Orders, newest first, filtered by status, searched by order id or customer e-mail."""
    chosen = _status(status)
    q = q.strip()
    items, next_cursor = await _find(parent(request), session.principal, q, chosen, before)
    fragment = request.headers.get("hx-request") == "true"
    return render(
        request,
        "orders_table.html" if fragment else "orders.html",
        session=session,
        orders=items,
        next_cursor=next_cursor,
        filter_status=chosen.value if chosen else "",
        q=q,
        before=before or "",
        statuses=list(Status),
    )


async def _page(
    request: Request, session: Any, order_id: str, *, status: int = 200, **extra: Any
) -> Response:
    state = parent(request)
    order: Order = await state.orders.get(session.principal, order_id)
    customer = await state.customers.get(order.customer_id)
    payments = await state.orders.payments(session.principal, order_id)
    history = await event_log.history(
        state.notifier.db, aggregate_type="order", aggregate_id=order_id, after=0, upto=2**62
    )
    return render(
        request,
        "order.html",
        session=session,
        status=status,
        order=order,
        customer=customer,
        payments=payments,
        history=history,
        actions=ACTIONS.get(order.status, ()),
        errors=extra.pop("errors", {}),
        **extra,
    )


@router.get("/orders/{order_id}")
async def read_order(
    request: Request, session: StaffSession, order_id: Annotated[Text, Path(max_length=36)]
) -> Response:
    """One order: lines, totals, payments, event history and the actions it allows."""
    return await _page(request, session, order_id)


@router.post("/orders/{order_id}/{action}")
async def act(
    request: Request,
    session: FormSession,
    order_id: Annotated[Text, Path(max_length=36)],
    action: Annotated[Text, Path(max_length=20)],
    version: Annotated[str, Form(max_length=12)] = "",
    tracking_code: Annotated[str, Form(max_length=200)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Confirm, ship, deliver or cancel, at the version the page showed."""
    state = parent(request)
    expected = int(version) if version.isascii() and version.isdigit() else None
    if expected is None:
        errors = {"_": "The page did not say which version of the order it showed. Reload it."}
        return await _page(request, session, order_id, status=422, errors=errors)
    orders, who = state.orders, session.principal
    calls = {
        "confirm": lambda: orders.confirm(who, order_id, expected_version=expected),
        "ship": lambda: orders.ship(
            who, order_id, tracking_code=tracking_code, expected_version=expected
        ),
        "deliver": lambda: orders.deliver(who, order_id, expected_version=expected),
        "cancel": lambda: orders.cancel(who, order_id, reason=reason, expected_version=expected),
    }
    if action not in calls:
        raise OrderNotFound(order_id)
    try:
        await calls[action]()
    except DomainError as exc:
        if isinstance(exc, OrderNotFound):
            raise
        return await _page(request, session, order_id, status=_status_of(exc), **_refusal(exc))
    return RedirectResponse(f"/console/orders/{order_id}", status_code=303)


def _status_of(exc: DomainError) -> int:
    return 409 if isinstance(exc, Conflict) else 422


def _refusal(exc: DomainError) -> dict[str, Any]:
    if exc.code == "order_conflict":
        message = (
            "This order changed meanwhile (someone else acted on it). Nothing was changed: "
            "review it as it is now and try again."
        )
        return {"errors": {"_": message}, "conflict": True}
    return {"errors": errors_of(exc)}
