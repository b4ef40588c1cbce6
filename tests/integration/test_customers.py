"""The customers service against a real database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mercato.bootstrap import Container
from mercato.customers import CustomerInactive, CustomerNotFound, Role
from mercato.customers.domain import EmailTaken, InvalidCredentials
from mercato.customers.store import customers
from mercato.platform import security
from mercato.platform.db import sql
from tests.conftest import unique
from tests.integration.helpers import outbox_rows

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"
_NAMED_LIKE = sql(
    sa.select(customers.c.id, customers.c.name).where(
        sa.func.lower(customers.c.email) == sa.bindparam("pattern")
    )
)


async def test_registering_stores_the_account_with_a_normalised_email_and_an_event(
    container: Container,
) -> None:
    email = f"{unique('Mixed')}@Example.COM"
    registered = await container.customers.register(email=email, password=PASSWORD, name=" Ada ")

    stored = await container.customers.get(registered.id)
    assert str(stored.email) == email.lower()
    assert (stored.name, stored.role, stored.active, stored.version) == (
        "Ada",
        Role.CUSTOMER,
        True,
        1,
    )
    assert stored.created_at == registered.created_at
    assert stored.password_hash != PASSWORD
    rows = await outbox_rows(container.db, registered.id)
    assert [r["event_type"] for r in rows] == ["CustomerRegistered"]


async def test_an_email_can_be_registered_only_once_whatever_its_case(
    container: Container,
) -> None:
    local = unique("dup")
    first = await container.customers.register(
        email=f"{local}@example.com", password=PASSWORD, name="First"
    )
    with pytest.raises(EmailTaken):
        await container.customers.register(
            email=f"{local.upper()}@EXAMPLE.com", password=PASSWORD, name="Second"
        )
    async with container.db.connection() as conn:
        rows = await conn.fetch(_NAMED_LIKE, pattern=f"{local.lower()}@example.com")
    assert [(r["id"], r["name"]) for r in rows] == [(first.id, "First")]


async def test_login_issues_a_token_for_the_right_password_only(container: Container) -> None:
    email = f"{unique('login')}@example.com"
    registered = await container.customers.register(
        email=email, password=PASSWORD, name="Login", role=Role.STAFF
    )

    issued = await container.customers.login(email=email.upper(), password=PASSWORD)
    assert issued.customer.id == registered.id
    assert container.tokens.verify(issued.access_token) == security.Principal(
        registered.id, security.Role.STAFF
    )
    with pytest.raises(InvalidCredentials):
        await container.customers.login(email=email, password=PASSWORD + "!")
    with pytest.raises(InvalidCredentials):
        await container.customers.login(email=f"{unique('nobody')}@example.com", password=PASSWORD)
    with pytest.raises(InvalidCredentials):
        await container.customers.login(email="not an email", password=PASSWORD)


async def test_deactivating_blocks_login_and_ordering_until_reactivated(
    container: Container,
) -> None:
    email = f"{unique('active')}@example.com"
    registered = await container.customers.register(email=email, password=PASSWORD, name="A")

    off = await container.customers.set_active(registered.id, active=False)
    assert (off.active, off.version) == (False, 2)
    again = await container.customers.set_active(registered.id, active=False)
    assert again.version == 2  # idempotent: no change, no new version
    assert (await container.customers.get(registered.id)).active is False
    with pytest.raises(CustomerInactive):
        await container.customers.login(email=email, password=PASSWORD)
    with pytest.raises(CustomerInactive):
        await container.transact(
            lambda uow: container.customers.ensure_can_order(uow, registered.id)
        )

    on = await container.customers.set_active(registered.id, active=True)
    assert (on.active, on.version) == (True, 3)
    await container.customers.login(email=email, password=PASSWORD)
    await container.transact(lambda uow: container.customers.ensure_can_order(uow, registered.id))
    rows = await outbox_rows(container.db, registered.id)
    assert [r["event_type"] for r in rows] == [
        "CustomerRegistered",
        "CustomerDeactivated",
        "CustomerActivated",
    ]


async def test_unknown_customers_cannot_order_or_be_changed(container: Container) -> None:
    with pytest.raises(CustomerNotFound):
        await container.transact(
            lambda uow: container.customers.ensure_can_order(uow, unique("ghost"))
        )
    with pytest.raises(CustomerNotFound):
        await container.customers.set_active(unique("ghost"), active=False)
    with pytest.raises(CustomerNotFound):
        await container.customers.get(unique("ghost"))


async def test_several_accounts_authority_is_read_in_one_lookup(container: Container) -> None:
    active = await container.customers.register(
        email=f"{unique('many')}@example.com", password=PASSWORD, name="A"
    )
    inactive = await container.customers.register(
        email=f"{unique('many')}@example.com", password=PASSWORD, name="B"
    )
    await container.customers.set_active(inactive.id, active=False)

    found = await container.customers.accounts([active.id, inactive.id, unique("nobody")])

    assert found == {
        active.id: security.Account(security.Role.CUSTOMER, active=True),
        inactive.id: security.Account(security.Role.CUSTOMER, active=False),
    }
    assert await container.customers.accounts([]) == {}
