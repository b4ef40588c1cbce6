"""Finding accounts by e-mail (the console's customer search and order search)."""

from __future__ import annotations

import pytest

from mercato.bootstrap import Container
from tests.conftest import unique

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"


async def test_searching_by_part_of_an_email_takes_wildcards_literally(
    container: Container,
) -> None:
    tag = unique("s")
    literal = await container.customers.register(
        email=f"{tag}_50%off@example.com", password=PASSWORD, name="Literal"
    )
    lookalike = await container.customers.register(
        email=f"{tag}x50yoff@example.com", password=PASSWORD, name="Lookalike"
    )

    found = await container.customers.list_accounts(after=None, limit=10, text=f"{tag}_50%")
    assert [c.id for c in found.items] == [literal.id]
    both = await container.customers.list_accounts(after=None, limit=10, text=tag.upper())
    assert {c.id for c in both.items} == {literal.id, lookalike.id}
    paged = await container.customers.list_accounts(after=None, limit=1, text=tag)
    assert paged.next_cursor is not None
    assert await container.customers.list_accounts(after=None, limit=10, text="\\") is not None


async def test_an_account_is_found_by_its_email_in_any_case(container: Container) -> None:
    email = f"{unique('Find')}@Example.com"
    made = await container.customers.register(email=email, password=PASSWORD, name="F")
    found = await container.customers.find_by_email(email.upper())
    assert found is not None
    assert found.id == made.id
    assert await container.customers.find_by_email("not an e-mail") is None
    assert await container.customers.find_by_email(f"{unique('nobody')}@example.com") is None
