"""Sending one signed delivery over HTTP (httpx), per the Standard Webhooks specification.

Each request carries ``webhook-id`` (the delivery's id, the same on every retry and replay),
``webhook-timestamp`` (seconds since the epoch, when this attempt was made) and
``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body`` under the
endpoint's secret, made by the ``standardwebhooks`` library). Redirects are never followed (a
3xx is a failure), the response body is never read, and every request has a timeout. Outside
dev and test the request goes to the address the :class:`AddressGuard` checked, with the URL's
host as ``Host`` and TLS server name.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks import Webhook

from mercato import __version__
from mercato.kernel.errors import DomainError
from mercato.webhooks.addresses import AddressGuard

USER_AGENT = f"mercato-webhooks/{__version__}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one request came to: a status code, or an error before any answer."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def signed_headers(secret: str, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for one request."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


class WebhookSender:
    """One pooled httpx client for every endpoint; see the module docstring."""

    def __init__(self, guard: AddressGuard, *, timeout_s: float, max_connections: int) -> None:
        self.guard = guard
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=None),
            trust_env=False,  # no proxy from the environment between mercato and a receiver
        )

    async def send(
        self, url: str, *, secret: str, msg_id: str, at: datetime, body: bytes
    ) -> Outcome:
        """POST one delivery; never raises for what the network or the receiver does."""
        started = time.perf_counter()
        headers = signed_headers(secret, msg_id, at, body)
        try:
            target, extensions = await self._pinned(url, headers)
            async with self._client.stream(
                "POST", target, content=body, headers=headers, extensions=extensions
            ) as response:
                code: int | None = response.status_code
                error = None
        except DomainError as refused:
            code, error = None, refused.message
        except httpx.HTTPError as exc:
            code, error = None, f"{type(exc).__name__}: {exc}"[:200]
        return Outcome(code, error, int((time.perf_counter() - started) * 1000))

    async def _pinned(self, url: str, headers: dict[str, str]) -> tuple[str, dict[str, object]]:
        """The URL to request and its extensions: the checked address, when checks are on."""
        if self.guard.allow_private:
            return url, {}
        address = (await self.guard.addresses(url))[0]
        parts = urlsplit(url)
        host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        headers["host"] = parts.netloc
        extensions: dict[str, object] = {}
        if parts.scheme == "https":
            extensions["sni_hostname"] = parts.hostname or ""
        return urlunsplit(parts._replace(netloc=netloc)), extensions

    async def close(self) -> None:
        await self._client.aclose()
