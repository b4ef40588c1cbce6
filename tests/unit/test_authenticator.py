"""The Authenticator: a token's principal only while its account allows it, remembered for at
most one second."""

from __future__ import annotations

import time
from collections.abc import Sequence

import jwt
import pytest

from mercato.kernel.errors import AuthenticationFailed, PermissionDenied
from mercato.platform.security import (
    ACCOUNT_CACHE_S,
    REFRESHED_TOGETHER,
    Account,
    Authenticator,
    Principal,
    Role,
    TokenService,
)

pytestmark = pytest.mark.anyio

SECRET = "unit-test-secret-that-is-long-enough-000"


class Accounts:
    """Accounts by id, counting lookups; a clock the test moves."""

    def __init__(self) -> None:
        self.known: dict[str, Account] = {}
        self.lookups = 0
        self.read: list[list[str]] = []  # the ids of each lookup_many
        self.now = 1000.0

    async def lookup(self, user_id: str) -> Account | None:
        self.lookups += 1
        return self.known.get(user_id)

    async def lookup_many(self, user_ids: Sequence[str]) -> dict[str, Account]:
        self.lookups += 1
        self.read.append(sorted(user_ids))
        return {u: self.known[u] for u in user_ids if u in self.known}

    def clock(self) -> float:
        return self.now


def _setup(*, many: bool = False, **kwargs: float) -> tuple[Accounts, Authenticator, TokenService]:
    accounts = Accounts()
    tokens = TokenService(SECRET, ttl_s=3600)
    auth = Authenticator(
        tokens,
        accounts.lookup,
        lookup_many=accounts.lookup_many if many else None,
        clock=accounts.clock,
        **kwargs,
    )
    return accounts, auth, tokens


@pytest.fixture(params=[False, True], ids=["one_by_one", "together"])
def many(request: pytest.FixtureRequest) -> bool:
    """Whether the authenticator reads accounts together (as mercato's does) or one by one."""
    return bool(request.param)


async def test_an_account_is_remembered_for_less_than_one_second_and_then_read_again(
    many: bool,
) -> None:
    accounts, auth, tokens = _setup(many=many)
    accounts.known["u1"] = Account(Role.STAFF, active=True)
    token, _ = tokens.issue(Principal("u1", Role.STAFF))
    assert (await auth.verify(token)).is_staff
    accounts.known["u1"] = Account(Role.STAFF, active=False)  # deactivated by another process
    accounts.now += ACCOUNT_CACHE_S * 0.99
    assert (await auth.verify(token)).is_staff
    assert accounts.lookups == 1
    accounts.now += ACCOUNT_CACHE_S * 0.01
    with pytest.raises(PermissionDenied) as refused:
        await auth.verify(token)
    assert refused.value.code == "account_inactive"
    assert accounts.lookups == 2


async def test_forgetting_an_account_takes_effect_at_once(many: bool) -> None:
    accounts, auth, tokens = _setup(many=many)
    accounts.known["u1"] = Account(Role.CUSTOMER, active=True)
    token, _ = tokens.issue(Principal("u1", Role.CUSTOMER))
    await auth.verify(token)
    accounts.known["u1"] = Account(Role.CUSTOMER, active=False)
    auth.forget("u1")
    with pytest.raises(PermissionDenied):
        await auth.verify(token)


async def test_unknown_accounts_and_changed_roles_are_refused(many: bool) -> None:
    accounts, auth, tokens = _setup(many=many)
    with pytest.raises(AuthenticationFailed) as unknown:
        await auth.verify(tokens.issue(Principal("nobody", Role.STAFF))[0])
    assert unknown.value.code == "unknown_account"
    accounts.known["u2"] = Account(Role.CUSTOMER, active=True)
    with pytest.raises(PermissionDenied) as demoted:
        await auth.verify(tokens.issue(Principal("u2", Role.STAFF))[0])
    assert demoted.value.code == "role_changed"


async def test_a_longer_memory_than_one_second_is_refused() -> None:
    with pytest.raises(ValueError, match="cache_s"):
        _setup(cache_s=ACCOUNT_CACHE_S + 0.5)


async def test_the_memory_stays_bounded(many: bool) -> None:
    accounts, auth, _ = _setup(many=many, max_cached=10)
    for n in range(100):
        accounts.known[f"u{n}"] = Account(Role.CUSTOMER, active=True)
        await auth.check(Principal(f"u{n}", Role.CUSTOMER))
    assert len(auth._cached) <= 10


class Clock:
    """Wall time the test moves (a token's exp is wall time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_verified_token_is_not_decoded_again_during_its_lifetime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = TokenService(SECRET, ttl_s=3600)
    token, _ = tokens.issue(Principal("u1", Role.CUSTOMER))
    first = tokens.verify(token)
    monkeypatch.setattr(jwt, "decode", _no_decoding)
    assert tokens.verify(token) == first


async def test_a_remembered_token_is_judged_again_once_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    tokens = TokenService(SECRET, ttl_s=60, clock=clock)
    token, _ = tokens.issue(Principal("u1", Role.CUSTOMER))
    expires_at = tokens.verify(token).expires_at
    assert expires_at is not None
    monkeypatch.setattr(jwt, "decode", _no_decoding)
    clock.now = expires_at - 0.001
    assert tokens.verify(token).user_id == "u1"
    clock.now = expires_at  # PyJWT's rule: expired once now reaches exp
    monkeypatch.setattr(jwt, "decode", _expired)
    with pytest.raises(AuthenticationFailed) as refused:
        tokens.verify(token)  # decoded again, and PyJWT refuses it
    assert refused.value.code == "token_expired"


async def test_a_remembered_token_of_a_deactivated_staff_account_is_refused() -> None:
    # the token stays remembered; its account is still checked on every request
    accounts, auth, tokens = _setup()
    accounts.known["s1"] = Account(Role.STAFF, active=True)
    token, _ = tokens.issue(Principal("s1", Role.STAFF))
    assert (await auth.verify(token)).is_staff
    accounts.known["s1"] = Account(Role.STAFF, active=False)
    auth.forget("s1")  # what deactivating does in the process that did it
    with pytest.raises(PermissionDenied) as refused:
        await auth.verify(token)
    assert refused.value.code == "account_inactive"
    accounts.known["s1"] = Account(Role.CUSTOMER, active=True)  # demoted and reactivated
    accounts.now += ACCOUNT_CACHE_S  # and noticed by another process within a second
    with pytest.raises(PermissionDenied) as demoted:
        await auth.verify(token)
    assert demoted.value.code == "role_changed"


async def test_forged_tokens_are_never_remembered() -> None:
    tokens = TokenService(SECRET, ttl_s=3600)
    other = TokenService("another-secret-that-is-long-enough-00000", ttl_s=3600)
    forged, _ = other.issue(Principal("u1", Role.STAFF))
    for _ in range(2):
        with pytest.raises(AuthenticationFailed) as refused:
            tokens.verify(forged)
        assert refused.value.code == "invalid_token"


async def test_the_token_memory_stays_bounded() -> None:
    tokens = TokenService(SECRET, ttl_s=3600, max_cached=10)
    for n in range(100):
        tokens.verify(tokens.issue(Principal(f"u{n}", Role.CUSTOMER))[0])
    assert len(tokens._verified) <= 10


def _no_decoding(*_: object, **__: object) -> dict[str, object]:
    raise AssertionError("a remembered token was decoded again")


def _expired(*_: object, **__: object) -> dict[str, object]:
    raise jwt.ExpiredSignatureError("Signature has expired")


async def test_accounts_asked_for_are_read_again_together() -> None:
    accounts, auth, _ = _setup(many=True)
    for n in range(3):
        accounts.known[f"u{n}"] = Account(Role.CUSTOMER, active=True)
    principals = [Principal(f"u{n}", Role.CUSTOMER) for n in range(3)]
    for principal in principals:  # each read once
        await auth.check(principal)
    accounts.now += ACCOUNT_CACHE_S * 0.6
    for principal in principals[1:]:  # asked for again, still remembered
        await auth.check(principal)
    accounts.now += ACCOUNT_CACHE_S * 0.5  # u0's memory is over; u1's and u2's half-way
    await auth.check(principals[0])
    assert accounts.read[-1] == ["u0", "u1", "u2"]
    lookups = accounts.lookups
    accounts.now += ACCOUNT_CACHE_S * 0.9  # all three remembered from the last lookup
    for principal in principals:
        await auth.check(principal)
    assert accounts.lookups == lookups


async def test_an_account_read_together_is_still_remembered_for_less_than_one_second() -> None:
    accounts, auth, _ = _setup(many=True)
    accounts.known["u0"] = accounts.known["u1"] = Account(Role.STAFF, active=True)
    u0, u1 = Principal("u0", Role.STAFF), Principal("u1", Role.STAFF)
    await auth.check(u0)
    accounts.now += ACCOUNT_CACHE_S * 0.5
    await auth.check(u1)
    accounts.now += ACCOUNT_CACHE_S * 0.1
    await auth.check(u1)  # asked for: read again with the next lookup once half-way
    accounts.now += ACCOUNT_CACHE_S * 0.4
    await auth.check(u0)  # u0's memory is over: read with u1
    assert accounts.read[-1] == ["u0", "u1"]
    accounts.known["u1"] = Account(Role.STAFF, active=False)  # deactivated by another process
    accounts.now += ACCOUNT_CACHE_S * 0.99
    await auth.check(u1)  # remembered from that lookup, which started under a second ago
    accounts.now += ACCOUNT_CACHE_S * 0.01
    with pytest.raises(PermissionDenied) as refused:
        await auth.check(u1)
    assert refused.value.code == "account_inactive"


async def test_a_lookup_overlapping_a_forget_remembers_none_of_what_it_read() -> None:
    accounts, auth, _ = _setup(many=True)
    accounts.known["u0"] = accounts.known["u1"] = Account(Role.STAFF, active=True)
    u0, u1 = Principal("u0", Role.STAFF), Principal("u1", Role.STAFF)
    await auth.check(u1)
    accounts.now += ACCOUNT_CACHE_S * 0.6
    await auth.check(u1)  # asked for, half-way
    original = accounts.lookup_many

    async def forgetting_meanwhile(user_ids: Sequence[str]) -> dict[str, Account]:
        found = await original(user_ids)
        accounts.known["u1"] = Account(Role.STAFF, active=False)
        auth.forget("u1")  # this process deactivated u1 while the lookup ran
        return found

    auth._lookup_many = forgetting_meanwhile
    await auth.check(u0)
    assert accounts.read[-1] == ["u0", "u1"]
    with pytest.raises(PermissionDenied):
        await auth.check(u1)


async def test_at_most_so_many_accounts_are_read_together() -> None:
    accounts, auth, _ = _setup(many=True)
    principals = [Principal(f"u{n}", Role.CUSTOMER) for n in range(REFRESHED_TOGETHER + 50)]
    for principal in principals:
        accounts.known[principal.user_id] = Account(Role.CUSTOMER, active=True)
        await auth.check(principal)
    accounts.now += ACCOUNT_CACHE_S * 0.5
    for principal in principals:
        await auth.check(principal)
    accounts.known["late"] = Account(Role.CUSTOMER, active=True)
    await auth.check(Principal("late", Role.CUSTOMER))
    assert len(accounts.read[-1]) == REFRESHED_TOGETHER
