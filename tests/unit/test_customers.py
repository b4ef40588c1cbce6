"""The Customer aggregate and the account rules."""

from __future__ import annotations

import pytest

from mercato.customers.domain import (
    Customer,
    CustomerInactive,
    Role,
    check_name,
    check_password,
)
from mercato.customers.events import CustomerActivated, CustomerDeactivated, CustomerRegistered
from mercato.kernel.errors import InvalidValue, PermissionDenied
from mercato.kernel.values import Email
from tests.unit.builders import T0


def registered(*, role: Role = Role.CUSTOMER) -> Customer:
    customer = Customer.register(
        id="cust-1",
        email=Email("Ada@Example.com"),
        name="  Ada Lovelace ",
        password_hash="argon2-hash",
        role=role,
        now=T0,
    )
    customer.pull_events()
    return customer


def test_registering_creates_an_active_account_and_records_customer_registered() -> None:
    customer = Customer.register(
        id="cust-1",
        email=Email("Ada@Example.com"),
        name="  Ada Lovelace ",
        password_hash="argon2-hash",
        role=Role.STAFF,
        now=T0,
    )
    assert customer.active
    assert customer.version == 1
    assert customer.name == "Ada Lovelace"
    assert customer.email == Email("ada@example.com")
    assert (customer.role, customer.created_at) == (Role.STAFF, T0)
    assert customer.pull_events() == [
        CustomerRegistered(customer_id="cust-1", email="ada@example.com", role="staff")
    ]


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_registering_with_a_blank_or_overlong_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        Customer.register(
            id="c", email=Email("a@b.co"), name=name, password_hash="h", role=Role.CUSTOMER, now=T0
        )
    assert exc.value.code == "invalid_name"
    assert exc.value.field == "name"


def test_a_name_of_up_to_200_characters_is_kept_trimmed() -> None:
    assert check_name(" " + "x" * 200 + " ") == "x" * 200
    assert check_name("A") == "A"


def test_deactivating_records_customer_deactivated_once() -> None:
    customer = registered()
    customer.deactivate()
    assert (customer.active, customer.version) == (False, 2)
    assert customer.pull_events() == [CustomerDeactivated(customer_id="cust-1")]
    customer.deactivate()
    assert (customer.active, customer.version) == (False, 2)
    assert customer.pull_events() == []


def test_activating_records_customer_activated_once() -> None:
    customer = registered()
    customer.deactivate()
    customer.pull_events()
    customer.activate()
    assert (customer.active, customer.version) == (True, 3)
    assert customer.pull_events() == [CustomerActivated(customer_id="cust-1")]
    customer.activate()
    assert (customer.active, customer.version) == (True, 3)
    assert customer.pull_events() == []


def test_activating_an_active_account_changes_nothing() -> None:
    customer = registered()
    customer.activate()
    assert (customer.active, customer.version, customer.pending_events) == (True, 1, ())


def test_an_active_customer_can_order() -> None:
    customer = registered()
    customer.ensure_can_order()
    assert customer.active


def test_an_inactive_customer_cannot_order() -> None:
    customer = registered()
    customer.deactivate()
    with pytest.raises(CustomerInactive) as exc:
        customer.ensure_can_order()
    assert isinstance(exc.value, PermissionDenied)
    assert exc.value.code == "account_inactive"
    assert exc.value.data == {"customer_id": "cust-1"}


@pytest.mark.parametrize("length", [8, 9, 128])
def test_passwords_of_acceptable_length_are_returned_unchanged(length: int) -> None:
    password = ("pässwörd " * 20)[:length]
    assert check_password(password) == password


@pytest.mark.parametrize("length", [0, 1, 7, 129, 1000])
def test_passwords_too_short_or_too_long_are_refused(length: int) -> None:
    with pytest.raises(InvalidValue) as exc:
        check_password("p" * length)
    assert exc.value.code == "weak_password"
    assert exc.value.field == "password"
