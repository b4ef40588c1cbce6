"""``GET /console/events``: the all-orders event stream for the signed-in member of staff.

``EventSource`` sends cookies but no ``Authorization`` header, and an access token in the URL
would sit in the browser's history. So the console serves the same stream as ``/v1/events``
to the session's principal: it checks the session cookie like every console page, then hands
the request to the application's stream with the session's token as its bearer token. The
stream itself checks the account when it opens and again before writing events, and ends
when the account is deactivated, exactly as it does for API clients.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Receive, Scope, Send

from mercato.console.session import COOKIE, SignInRequired, open_session
from mercato.kernel.errors import AuthenticationFailed, PermissionDenied
from mercato.platform.http import header
from mercato.platform.problems import send_error


def _cookie(scope: Scope) -> str | None:
    raw = header(scope, b"cookie")
    if raw is None:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is no session
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


class ConsoleEvents:
    """The application's all-orders stream, authenticated by the console's session cookie."""

    def __init__(self, events: ASGIApp) -> None:
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        console = scope["app"]
        application = console.state.parent
        try:
            session = await open_session(
                _cookie(scope), auth=application.state.auth, keys=console.state.keys
            )
        except SignInRequired as exc:
            error: Exception = (
                PermissionDenied("staff_only", exc.reason)
                if exc.refused
                else AuthenticationFailed("unauthenticated", "sign in to the console")
            )
            await send_error({**scope, "app": application}, receive, send, error)
            return
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"authorization", b"cookie")]
        headers.append((b"authorization", f"Bearer {session.token}".encode()))
        # the stream reads the services from the application, not from the console
        forwarded = {**scope, "app": application, "headers": headers, "query_string": b""}
        await self._events(forwarded, receive, send)
