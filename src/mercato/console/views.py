"""What every console page shares: templates, the staff session dependencies, form errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from mercato.console.session import COOKIE, CsrfRefused, Keys, Session, open_session, same
from mercato.kernel.errors import DomainError, InvalidValue
from mercato.kernel.money import Currency, Money
from mercato.kernel.values import describe_character, forbidden_character

PREFIX = "/console"
WHOLE = re.compile(r"[+-]?[0-9]{1,12}")
MULTILINE = frozenset({"description"})  # form fields that may hold tabs and line breaks
_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    auto_reload=False,
)
_templates.filters["money"] = str
_templates.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M") if value else ""


def parent(request: Request) -> Any:
    """The application's state: the modules' services, settings, the authenticator."""
    return request.app.state.parent.state


def keys(request: Request) -> Keys:
    """The console's secrets."""
    found: Keys = request.app.state.keys
    return found


async def _session(request: Request) -> Session:
    state = parent(request)
    return await open_session(request.cookies.get(COOKIE), auth=state.auth, keys=keys(request))


async def _form_session(request: Request) -> Session:
    session = await _session(request)
    form = await request.form()
    given = form.get("csrf")
    if not same(given if isinstance(given, str) else None, session.csrf):
        raise CsrfRefused()
    for name, value in form.multi_items():
        bad = forbidden_character(str(value), multiline=name in MULTILINE)
        if bad is not None:
            raise InvalidValue(
                "invalid_text",
                f"{name} must not contain control characters (found {describe_character(bad)})",
                field=name,
            )
    return session


StaffSession = Annotated[Session, Depends(_session)]
FormSession = Annotated[Session, Depends(_form_session)]


def render(
    request: Request,
    name: str,
    *,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page (or, for htmx, a fragment) rendered with the session's CSRF token."""
    html = _templates.get_template(name).render(
        request=request, session=session, csrf=session.csrf if session else "", p=PREFIX, **context
    )
    return HTMLResponse(html, status_code=status)


FIELD_NAMES = {
    "price_amount": "price",
    "amount": "price",
    "If-Match": "version",
    "expected_version": "version",
}


def errors_of(exc: DomainError) -> dict[str, str]:
    """A domain error as messages by form field (``_`` for the form as a whole)."""
    field = FIELD_NAMES.get(exc.field or "", exc.field) or "_"
    return {field: _sentence(exc.message)}


def _sentence(message: str) -> str:
    text = message.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def parse_int(value: str, *, field: str, label: str, errors: dict[str, str]) -> int:
    """A whole number from a form field; records a plain-words error otherwise."""
    cleaned = value.strip()
    if WHOLE.fullmatch(cleaned):
        return int(cleaned)
    errors[field] = f"{label} must be a whole number."
    return 0


def parse_money(value: str, *, currency: str, field: str, errors: dict[str, str]) -> int:
    """An amount like ``12.50`` in the currency's minor units; records an error otherwise."""
    digits = Currency.minor_digits(currency)
    whole, _, frac = value.strip().partition(".")
    if (
        whole.isdigit()
        and whole.isascii()
        and len(whole) <= 15
        and len(frac) <= digits
        and (frac == "" or (frac.isdigit() and frac.isascii()))
    ):
        return int(int(whole) * 10**digits + int(frac.ljust(digits, "0") or 0))
    places = f" with at most {digits} decimal places" if digits else ""
    errors[field] = f"Price must be a positive amount like 12.50{places}."
    return 0


def amount_text(money: Money) -> str:
    """An amount without its currency, as a price field shows it."""
    return str(money).rsplit(" ", 1)[0]
