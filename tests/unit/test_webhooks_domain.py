"""Webhook rules without I/O: the retry schedule, URLs, event types, which addresses are
public, and the endpoint's edits."""

from __future__ import annotations

import ipaddress
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from mercato.kernel.errors import InvalidValue
from mercato.webhooks.addresses import AddressGuard, is_public
from mercato.webhooks.domain import (
    JITTER,
    MAX_ATTEMPTS,
    DisabledReason,
    WebhookEndpoint,
    check_event_types,
    check_url,
    new_secret,
    retry_delay,
    should_disable,
)
from mercato.webhooks.events import WebhookEndpointChanged, WebhookEndpointCreated

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def schedule(jitter: float) -> list[timedelta]:
    delays = []
    for attempts in range(1, MAX_ATTEMPTS + 1):
        delay = retry_delay(attempts, jitter=jitter)
        if delay is None:
            break
        delays.append(delay)
    return delays


def test_the_retry_schedule_backs_off_exponentially_over_about_three_days() -> None:
    delays = schedule(1.0)
    assert len(delays) == MAX_ATTEMPTS - 1
    assert delays[:4] == [timedelta(minutes=m) for m in (1, 3, 9, 27)]
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert max(delays) == timedelta(hours=18)
    assert timedelta(days=2.9) < sum(delays, timedelta()) < timedelta(days=3.1)


def test_jitter_stays_within_its_bounds_and_total_time_stays_near_three_days() -> None:
    low, high = schedule(1 - JITTER), schedule(1 + JITTER)
    assert sum(low, timedelta()) > timedelta(days=2.3)
    assert sum(high, timedelta()) < timedelta(days=3.7)
    # a jitter outside the bounds (a bad random source) is clamped, never a zero or huge wait
    assert retry_delay(1, jitter=0.0) == timedelta(minutes=1) * (1 - JITTER)
    assert retry_delay(1, jitter=50.0) == timedelta(minutes=1) * (1 + JITTER)


def test_after_the_last_attempt_there_is_no_retry() -> None:
    assert retry_delay(MAX_ATTEMPTS, jitter=1.0) is None
    assert retry_delay(MAX_ATTEMPTS + 5, jitter=1.0) is None


def test_an_endpoint_is_disabled_only_after_failing_for_the_whole_period() -> None:
    five_days = timedelta(days=5)
    assert not should_disable(None, NOW, after=five_days)
    assert not should_disable(NOW - timedelta(days=4, hours=23), NOW, after=five_days)
    assert should_disable(NOW - five_days, NOW, after=five_days)


@pytest.mark.parametrize(
    ("url", "https_only"),
    [
        ("ftp://example.com/h", False),
        ("example.com/h", False),
        ("http:///no-host", False),
        ("https://user:secret@example.com/h", False),
        ("https://example.com:0/h", False),
        ("https://example.com:99999/h", False),
        ("http://example.com/h", True),
        ("https://example.com/" + "x" * 2000, False),
        ("https://exa\x00mple.com/h", False),
    ],
)
def test_urls_that_cannot_be_endpoints_are_refused_naming_the_field(
    url: str, https_only: bool
) -> None:
    with pytest.raises(InvalidValue) as refused:
        check_url(url, require_https=https_only)
    assert refused.value.field == "url"


def test_good_urls_pass() -> None:
    assert check_url("https://hooks.example.com:8443/in?x=1", require_https=True)
    assert check_url("http://127.0.0.1:9000/in", require_https=False)


def test_event_types_are_known_or_all_and_duplicates_collapse() -> None:
    known = frozenset({"OrderPlaced", "OrderShipped"})
    assert check_event_types(["OrderPlaced", "*", "OrderPlaced"], known) == ("OrderPlaced", "*")
    with pytest.raises(InvalidValue) as refused:
        check_event_types(["OrderPlaced", "OrderLost"], known)
    assert (refused.value.code, refused.value.field) == ("unknown_event_type", "event_types[1]")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254",
        "0.0.0.0", "100.64.0.1", "192.0.2.1", "198.18.0.1", "224.0.0.1", "255.255.255.255",
        "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)  # fmt: skip
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "answers"),
    [
        ("http://localhost/h", ["127.0.0.1", "::1"]),
        ("http://rebind.example.com/h", ["93.184.216.34", "10.1.2.3"]),  # one bad answer is enough
        ("http://metadata.example.com/h", ["fe80::1%eth0"]),
        ("http://2130706433/h", ["127.0.0.1"]),  # the resolver reads numeric forms as IPv4
        ("http://[::ffff:7f00:1]/h", []),  # a literal is judged without a lookup
        ("http://169.254.169.254/latest/meta-data", []),
    ],
)
async def test_the_guard_refuses_hosts_that_are_or_resolve_to_private_addresses(
    url: str, answers: list[str]
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return answers

    with pytest.raises(InvalidValue) as refused:
        await AddressGuard(allow_private=False, resolve=resolve).check(url)
    assert (refused.value.code, refused.value.field) == ("webhook_url_not_public", "url")


@pytest.mark.anyio
async def test_a_host_that_does_not_resolve_is_refused_and_private_hosts_pass_in_dev() -> None:
    async def nothing(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(InvalidValue) as refused:
        await AddressGuard(allow_private=False, resolve=nothing).check("https://nowhere.test/")
    assert refused.value.code == "invalid_webhook_url"
    await AddressGuard(allow_private=True, resolve=nothing).check("http://localhost/h")


def endpoint(**changes: object) -> WebhookEndpoint:
    made = WebhookEndpoint.register(
        id="01900000-0000-7000-8000-000000000001",
        url="https://example.com/h",
        event_types=("OrderPlaced",),
        description="",
        enabled=True,
        now=NOW,
    )
    for name, value in changes.items():
        setattr(made, name, value)
    return made


def test_a_new_endpoint_gets_a_fresh_standard_webhooks_secret_and_an_event() -> None:
    first, second = endpoint(), endpoint()
    assert first.secret.startswith("whsec_")
    assert first.secret != second.secret
    assert len(new_secret()) == len("whsec_") + 44
    (created,) = first.pull_events()
    assert isinstance(created, WebhookEndpointCreated)
    assert "secret" not in created.payload()


def test_enabling_again_forgets_failures_and_an_edit_that_changes_nothing_records_nothing() -> None:
    failing = endpoint(enabled=False, disabled_reason=DisabledReason.FAILING, failing_since=NOW)
    failing.pull_events()
    failing.change(url="https://example.com/h", description="")
    assert failing.version == 1
    assert failing.pull_events() == []
    failing.change(enabled=True)
    assert (failing.enabled, failing.disabled_reason, failing.failing_since) == (True, None, None)
    (changed,) = failing.pull_events()
    assert isinstance(changed, WebhookEndpointChanged)
    assert failing.version == 2


def test_an_endpoint_wants_the_types_it_named_or_everything() -> None:
    assert endpoint().wants("OrderPlaced")
    assert not endpoint().wants("OrderShipped")
    assert endpoint(event_types=("*",)).wants("OrderShipped")
