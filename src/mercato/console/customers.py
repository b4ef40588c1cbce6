"""Customers: accounts listed and searched by e-mail, activated and deactivated."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from mercato.console.views import FormSession, StaffSession, errors_of, parent, render
from mercato.kernel.errors import DomainError, NotFound
from mercato.platform.pagination import decode_cursor
from mercato.platform.schemas import Text

router = APIRouter()
PAGE = 25


async def _list(
    request: Request, session: Any, q: str, after: str | None, status: int = 200, **extra: Any
) -> Response:
    page = await parent(request).customers.list_accounts(
        after=decode_cursor(after), limit=PAGE, text=q.strip() or None
    )
    return render(
        request,
        "customers.html",
        session=session,
        status=status,
        customers=page.items,
        next=page.next_cursor,
        q=q,
        error=extra.get("error", ""),
        error_for=extra.get("error_for", ""),
    )


@router.get("/customers")
async def list_customers(
    request: Request,
    session: StaffSession,
    q: Annotated[Text, Query(max_length=254)] = "",
    after: Annotated[Text | None, Query(max_length=200)] = None,
) -> Response:
    """Accounts, oldest first; searched by any part of their e-mail."""
    return await _list(request, session, q, after)


@router.post("/customers/{customer_id}/{action}")
async def set_active(
    request: Request,
    session: FormSession,
    customer_id: Annotated[Text, Path(max_length=36)],
    action: Annotated[Text, Path(pattern="^(activate|deactivate)$")],
) -> Response:
    """Activate or deactivate an account (never your own, nor the last active staff one)."""
    service = parent(request).customers
    try:
        await service.set_active(
            customer_id, active=action == "activate", actor_id=session.principal.user_id
        )
    except NotFound:
        raise
    except DomainError as exc:
        message = errors_of(exc).popitem()[1]
        return await _list(request, session, "", None, 409, error=message, error_for=customer_id)
    return RedirectResponse("/console/customers", status_code=303)
