"""Where webhooks may go: public internet addresses only (no SSRF into the shop's network).

A URL's host is refused when it is, or resolves to, an address that is not globally routable:
loopback, private (RFC 1918, unique-local), link-local (cloud metadata lives there),
unspecified, shared, reserved, documentation or multicast ranges. IPv6 forms that carry an
IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, NAT64) are judged by the IPv4 address inside,
Teredo is refused outright. A name is resolved and every address it resolves to must pass; the
sender then connects to the address that was checked (not to a second lookup), so a name that
changes its answer between check and request cannot lead mercato inside. The check is off in
the dev and test profiles (``MERCATO_WEBHOOK_PRIVATE_ADDRESSES``), where receivers run locally.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from mercato.webhooks.domain import InvalidWebhookUrl, WebhookUrlNotPublic

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(ip: IPAddress) -> bool:
    """Whether mercato may send a request to this address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo is not None:
            return False
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if inner is not None:
            return is_public(inner)
    return ip.is_global and not ip.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def host_and_port(url: str) -> tuple[str, int]:
    """The host (without brackets) and port of an http(s) URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return host, parts.port or (443 if parts.scheme == "https" else 80)


class AddressGuard:
    """Refuses URLs whose host is not public, unless private addresses are allowed."""

    def __init__(self, *, allow_private: bool, resolve: Resolver = system_resolver) -> None:
        self.allow_private = allow_private
        self._resolve = resolve

    async def addresses(self, url: str) -> list[IPAddress]:
        """The checked addresses to connect to for ``url``; WebhookUrlNotPublic if any is not
        public, InvalidWebhookUrl if the host does not resolve."""
        host, port = host_and_port(url)
        try:
            found = [ipaddress.ip_address(host)]
        except ValueError:
            found = await self._lookup(host, port)
        if not self.allow_private:
            for ip in found:
                if not is_public(ip):
                    raise WebhookUrlNotPublic(host, str(ip))
        return found

    async def check(self, url: str) -> None:
        """Refuse ``url`` unless it may be called (no lookup when private addresses are allowed)."""
        if not self.allow_private:
            await self.addresses(url)

    async def _lookup(self, host: str, port: int) -> list[IPAddress]:
        try:
            answers = await self._resolve(host, port)
        except (OSError, UnicodeError):
            answers = []
        found = []
        for answer in answers:
            # a scoped IPv6 answer (fe80::1%eth0) is link-local whatever its scope
            found.append(ipaddress.ip_address(answer.split("%", 1)[0]))
        if not found:
            raise InvalidWebhookUrl(f"the host {host} does not resolve")
        return found
