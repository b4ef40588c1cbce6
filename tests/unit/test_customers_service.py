"""The customers' use cases against the fake unit of work: the business rules, without SQL."""

from __future__ import annotations

import pytest

from mercato.customers import CustomerInactive, CustomerNotFound, CustomersService, Role
from mercato.customers.domain import (
    CommonPassword,
    CustomerConflict,
    EmailTaken,
    InvalidCredentials,
    WeakPassword,
)
from mercato.customers.events import CustomerActivated, CustomerDeactivated, CustomerRegistered
from mercato.customers.store import CustomerRepository
from mercato.platform.security import PasswordHashing, TokenService
from mercato.platform.security import Role as TokenRole
from mercato.platform.throttle import TooManyAttempts
from mercato.platform.uow import UnitOfWork
from tests.fakes import FakeTransactor, tables_of
from tests.fakes.customers import FakeLoginGuard

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"
TOKENS = TokenService("unit-test-secret-of-enough-length", ttl_s=600)
HASHING = PasswordHashing(time_cost=1, memory_kib=8)  # the cheapest argon2id: rules, not cost


@pytest.fixture
def transact() -> FakeTransactor:
    return FakeTransactor()


@pytest.fixture
def guard() -> FakeLoginGuard:
    return FakeLoginGuard(limit=3)


@pytest.fixture
def customers(transact: FakeTransactor, guard: FakeLoginGuard) -> CustomersService:
    return CustomersService(transact, hashing=HASHING, tokens=TOKENS, login_guard=guard)


async def test_registering_normalises_the_account_hashes_the_password_and_publishes_it(
    customers: CustomersService, transact: FakeTransactor
) -> None:
    ada = await customers.register(email="Ada@Example.COM", password=PASSWORD, name=" Ada ")
    stored = await customers.get(ada.id)
    assert (str(stored.email), stored.name, stored.role, stored.active) == (
        "ada@example.com",
        "Ada",
        Role.CUSTOMER,
        True,
    )
    assert PASSWORD not in stored.password_hash
    assert transact.events() == [
        CustomerRegistered(customer_id=ada.id, email="ada@example.com", role="customer")
    ]


async def test_an_email_is_taken_whatever_its_case(
    customers: CustomersService, transact: FakeTransactor
) -> None:
    await customers.register(email="ada@example.com", password=PASSWORD, name="Ada")
    with pytest.raises(EmailTaken):
        await customers.register(email="ADA@example.com", password=PASSWORD, name="Other")
    assert len(transact.tables["customers"]) == 1
    assert len(transact.events(CustomerRegistered)) == 1


@pytest.mark.parametrize(
    ("password", "refusal"), [("short", WeakPassword), ("Password123", CommonPassword)]
)
async def test_weak_or_common_passwords_are_refused_before_anything_is_written(
    customers: CustomersService,
    transact: FakeTransactor,
    password: str,
    refusal: type[Exception],
) -> None:
    with pytest.raises(refusal):
        await customers.register(email="ada@example.com", password=password, name="Ada")
    assert transact.units == 0


async def test_a_login_with_the_right_password_issues_a_token_for_the_account(
    customers: CustomersService,
) -> None:
    staff = await customers.register(
        email="boss@example.com", password=PASSWORD, name="Boss", role=Role.STAFF
    )
    issued = await customers.login(email=" BOSS@example.com ", password=PASSWORD)
    principal = TOKENS.verify(issued.access_token)
    assert (principal.user_id, principal.role) == (staff.id, TokenRole.STAFF)
    assert issued.expires_in == 600


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ada@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("not-an-email", PASSWORD),
    ],
)
async def test_a_wrong_password_an_unknown_or_a_malformed_email_fail_alike(
    customers: CustomersService, email: str, password: str
) -> None:
    await customers.register(email="ada@example.com", password=PASSWORD, name="Ada")
    with pytest.raises(InvalidCredentials):
        await customers.login(email=email, password=password)


async def test_repeated_failures_lock_the_email_out_and_a_success_clears_them(
    customers: CustomersService, guard: FakeLoginGuard
) -> None:
    await customers.register(email="ada@example.com", password=PASSWORD, name="Ada")
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await customers.login(email="ADA@example.com", password="guess", client="10.0.0.1")
    await customers.login(email="ada@example.com", password=PASSWORD)
    for _ in range(3):  # the differently spelled guesses count against one e-mail
        with pytest.raises(InvalidCredentials):
            await customers.login(email=" Ada@Example.com", password="guess")
    with pytest.raises(TooManyAttempts):
        await customers.login(email="ada@example.com", password=PASSWORD)
    assert guard.failures["address:10.0.0.1"] == 2


async def test_a_deactivated_account_cannot_log_in_or_order_until_it_is_activated_again(
    customers: CustomersService, transact: FakeTransactor
) -> None:
    ada = await customers.register(email="ada@example.com", password=PASSWORD, name="Ada")
    off = await customers.set_active(ada.id, active=False)
    assert (off.active, off.version) == (False, 2)
    with pytest.raises(CustomerInactive):
        await customers.login(email="ada@example.com", password=PASSWORD)
    with pytest.raises(CustomerInactive):
        await transact(lambda uow: customers.ensure_can_order(uow, ada.id))
    account = await customers.account(ada.id)
    assert account is not None
    assert account.active is False

    on = await customers.set_active(ada.id, active=True)
    assert (on.active, on.version) == (True, 3)
    await transact(lambda uow: customers.ensure_can_order(uow, ada.id))
    assert [type(e) for e in transact.events()[1:]] == [CustomerDeactivated, CustomerActivated]


async def test_setting_the_state_an_account_already_has_changes_and_publishes_nothing(
    customers: CustomersService, transact: FakeTransactor
) -> None:
    ada = await customers.register(email="ada@example.com", password=PASSWORD, name="Ada")
    same = await customers.set_active(ada.id, active=True)
    assert same.version == 1
    assert len(transact.events()) == 1


async def test_a_deactivation_that_lost_a_race_is_a_conflict(
    customers: CustomersService, transact: FakeTransactor
) -> None:
    ada = await customers.register(email="ada@example.com", password=PASSWORD, name="Ada")

    async def deactivate_while_another_commits(uow: UnitOfWork) -> None:
        accounts = uow.repository(CustomerRepository)
        mine = await accounts.get(ada.id)
        tables_of(uow)["customers"][ada.id].update(active=False, version=2)  # the other writer
        mine.deactivate()
        await accounts.save(mine)

    with pytest.raises(CustomerConflict):
        await transact(deactivate_while_another_commits)
    assert transact.events(CustomerDeactivated) == []


async def test_unknown_customers_are_not_found_and_may_not_order(
    customers: CustomersService, transact: FakeTransactor
) -> None:
    with pytest.raises(CustomerNotFound):
        await customers.get("nobody")
    with pytest.raises(CustomerNotFound):
        await customers.set_active("nobody", active=False)
    with pytest.raises(CustomerNotFound):
        await transact(lambda uow: customers.ensure_can_order(uow, "nobody"))
    assert await customers.account("nobody") is None


async def test_accounts_are_listed_in_registration_order_page_by_page(
    customers: CustomersService,
) -> None:
    ids = [
        (await customers.register(email=f"c{n}@example.com", password=PASSWORD, name=f"C{n}")).id
        for n in range(3)
    ]
    first = await customers.list_accounts(after=None, limit=2)
    assert [c.id for c in first.items] == ids[:2]
    rest = await customers.list_accounts(after=ids[1], limit=2)
    assert ([c.id for c in rest.items], rest.next_cursor) == (ids[2:], None)
