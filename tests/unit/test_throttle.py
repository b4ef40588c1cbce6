"""Which client address a limit counts by."""

from __future__ import annotations

import pytest

from mercato.platform.throttle import client_address


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (("203.0.113.7", 5000), "203.0.113.7"),
        (("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 5000), "2001:db8:1:2::/64"),
        (("2001:db8:1:2::9", 1), "2001:db8:1:2::/64"),
        (("::ffff:203.0.113.7", 1), "203.0.113.7"),
        (("testclient", 50000), "testclient"),
        (None, "unknown"),
    ],
)
def test_clients_are_counted_by_address_and_ipv6_hosts_by_their_64(
    client: tuple[str, int] | None, expected: str
) -> None:
    assert client_address(client) == expected
