"""The console application, mounted at ``/console``: its security headers, sign-in, error pages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mercato.console import catalog, customers, dashboard, orders
from mercato.console.session import (
    COOKIE,
    LOGIN_COOKIE,
    PATH,
    CsrfRefused,
    Keys,
    SignInRequired,
    new_login_nonce,
    same,
)
from mercato.console.stream import ConsoleEvents
from mercato.console.views import PREFIX, FormSession, parent, render
from mercato.kernel.errors import DomainError, PermissionDenied, TooManyRequests
from mercato.platform import problems
from mercato.platform.db import DatabaseUnavailable, OutOfRange, TransientError, UnstorableText
from mercato.platform.throttle import client_address

# No inline script or style anywhere: everything the pages run or wear comes from /console/static.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the console's security headers to every response it sends (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(f"{PREFIX}/static/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                extra = HEADERS if static else [*HEADERS, (b"cache-control", b"no-store")]
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


def create(application: FastAPI, *, events: ASGIApp) -> FastAPI:
    """The console for ``application`` (whose state holds the services); ``events`` is the
    all-orders event stream it serves to signed-in staff."""
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.state.parent = application
    secret = application.state.settings.token_secret.get_secret_value()
    console.state.keys = Keys(secret)
    console.add_exception_handler(SignInRequired, _sign_in)
    console.add_exception_handler(CsrfRefused, _csrf_refused)
    console.add_exception_handler(DomainError, _domain_error)
    console.add_exception_handler(RequestValidationError, _bad_request)
    for busy in (DatabaseUnavailable, TransientError):
        console.add_exception_handler(busy, _busy)
    for unstorable in (UnstorableText, OutOfRange):
        console.add_exception_handler(unstorable, _unstorable)
    console.router.routes.append(Route("/events", ConsoleEvents(events), methods=["GET"]))
    console.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"))
    console.add_api_route("/login", _login_page, methods=["GET"])
    console.add_api_route("/login", _login, methods=["POST"])
    console.add_api_route("/logout", _logout, methods=["POST"])
    for module in (dashboard, orders, catalog, customers):
        console.include_router(module.router)
    console.add_middleware(SecurityHeaders)
    return console


def _secure(request: Request) -> bool:
    return str(parent(request).settings.env.value) not in {"dev", "test"}


def _safe_next(target: str | None) -> str:
    # only a path inside the console: never another site (//evil.example) or scheme
    if target and target.startswith(f"{PREFIX}/") and "\\" not in target and "//" not in target:
        return target
    return f"{PREFIX}/"


async def _login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, next_url=_safe_next(next), errors={}, email="")


def _login_form(
    request: Request, *, next_url: str, errors: dict[str, str], email: str, status: int = 200
) -> Response:
    nonce = new_login_nonce()
    response = render(
        request,
        "login.html",
        session=None,
        status=status,
        nonce=nonce,
        next_url=next_url,
        errors=errors,
        email=email,
        notice=request.query_params.get("reason", ""),
    )
    response.set_cookie(
        LOGIN_COOKIE, nonce, path=PATH, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


async def _login(
    request: Request,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    if not same(csrf, request.cookies.get(LOGIN_COOKIE)):
        raise CsrfRefused()
    next_url = _safe_next(next)
    errors = _missing(email=email, password=password)
    if errors:
        return _login_form(request, next_url=next_url, errors=errors, email=email, status=422)
    customers_service = parent(request).customers
    try:
        issued = await customers_service.login(
            email=email, password=password, client=client_address(request.client)
        )
    except DomainError as exc:
        status, message = _login_refusal(exc)
        errors = {"password": message}
        return _login_form(request, next_url=next_url, errors=errors, email=email, status=status)
    if issued.customer.role.value != "staff":
        errors = {"email": "This account is not a staff account; the console is for staff only."}
        return _login_form(request, next_url=next_url, errors=errors, email=email, status=403)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        COOKIE,
        issued.access_token,
        max_age=issued.expires_in,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=PATH)
    return response


def _missing(**fields: str) -> dict[str, str]:
    return {
        name: f"Enter your {name.replace('_', ' ')}." for name, value in fields.items() if not value
    }


def _login_refusal(exc: DomainError) -> tuple[int, str]:
    if isinstance(exc, TooManyRequests):
        wait = exc.retry_after or 1
        return 429, f"Too many attempts. Try again in {wait} seconds."
    if isinstance(exc, PermissionDenied):  # account_inactive
        return 403, "This account has been deactivated."
    return 401, "The e-mail or password is wrong."


async def _logout(request: Request, session: FormSession) -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PATH)
    return response


async def _sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    target = f"{PREFIX}/login?next={quote(request.url.path)}"
    if exc.reason:
        target += f"&reason={quote(exc.reason)}"
    response: Response
    if request.headers.get("hx-request"):  # htmx follows HX-Redirect, not a 303
        response = Response(status_code=401, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if exc.reason:
        response.delete_cookie(COOKIE, path=PATH)
    return response


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    message = "This form has expired or did not come from the console. Reload the page and retry."
    return render(request, "error.html", session=None, status=403, message=message)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    status = problems.status_for(exc)
    answer = render(request, "error.html", session=None, status=status, message=exc.message)
    if exc.retry_after is not None:
        answer.headers["Retry-After"] = str(exc.retry_after)
    return answer


async def _busy(request: Request, exc: Exception) -> Response:
    message = "The shop's database is busy or unreachable right now. Try again in a moment."
    answer = render(request, "error.html", session=None, status=503, message=message)
    answer.headers["Retry-After"] = "1"
    return answer


async def _unstorable(request: Request, exc: Exception) -> Response:
    message = "A value in the request cannot be stored (too large, or not valid text)."
    return render(request, "error.html", session=None, status=422, message=message)


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems: list[Any] = list(exc.errors())
    first = problems[0] if problems else {}
    where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
    message = f"{where}: {first.get('msg', 'invalid value')}"
    return render(request, "error.html", session=None, status=422, message=message)
