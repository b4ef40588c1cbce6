"""Customers: accounts that order (customers) or run the shop (staff)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mercato.customers.events import CustomerActivated, CustomerDeactivated, CustomerRegistered
from mercato.kernel.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidValue,
    NotFound,
    PermissionDenied,
)
from mercato.kernel.events import AggregateRoot
from mercato.kernel.values import Email, check_text

MIN_PASSWORD = 8
MAX_PASSWORD = 128


class ErrorCode(StrEnum):
    EMAIL_TAKEN = "email_taken"
    WEAK_PASSWORD = "weak_password"
    COMMON_PASSWORD = "common_password"
    INVALID_CREDENTIALS = "invalid_credentials"
    CUSTOMER_NOT_FOUND = "customer_not_found"
    ACCOUNT_INACTIVE = "account_inactive"  # the same code the authenticator gives a token
    INVALID_NAME = "invalid_name"
    LAST_ACTIVE_STAFF = "last_active_staff"
    CANNOT_DEACTIVATE_SELF = "cannot_deactivate_self"
    CUSTOMER_CONFLICT = "customer_conflict"


class Role(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"


class EmailTaken(Conflict):
    def __init__(self) -> None:
        super().__init__(
            ErrorCode.EMAIL_TAKEN, "an account with this e-mail already exists", field="email"
        )


class LastActiveStaff(Conflict):
    """Deactivating this account would leave the shop with no active staff to run it."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(
            ErrorCode.LAST_ACTIVE_STAFF,
            "this is the last active staff account; activate another one first",
            customer_id=customer_id,
        )


class CannotDeactivateSelf(Conflict):
    """Staff may not lock themselves out; another member of staff must do it."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(
            ErrorCode.CANNOT_DEACTIVATE_SELF,
            "you cannot deactivate your own account; ask another member of staff",
            customer_id=customer_id,
        )


class WeakPassword(InvalidValue):
    def __init__(self) -> None:
        super().__init__(
            ErrorCode.WEAK_PASSWORD,
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            field="password",
        )


class CommonPassword(InvalidValue):
    def __init__(self) -> None:
        super().__init__(
            ErrorCode.COMMON_PASSWORD,
            "password is one of the most common passwords, which attackers try first; "
            "choose another",
            field="password",
        )


class InvalidCredentials(AuthenticationFailed):
    def __init__(self) -> None:
        super().__init__(ErrorCode.INVALID_CREDENTIALS, "e-mail or password is wrong")


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: str) -> None:
        super().__init__(ErrorCode.CUSTOMER_NOT_FOUND, "no such customer", customer_id=customer_id)


class CustomerInactive(PermissionDenied):
    """The account is deactivated: 403 ``account_inactive`` at login, as with its token."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(
            ErrorCode.ACCOUNT_INACTIVE,
            "this account has been deactivated",
            customer_id=customer_id,
        )


class CustomerConflict(Conflict):
    def __init__(self, customer_id: str) -> None:
        super().__init__(
            ErrorCode.CUSTOMER_CONFLICT,
            "the customer changed concurrently",
            customer_id=customer_id,
        )


def check_password(password: str) -> str:
    """Return the password if it meets the length policy, else raise WeakPassword."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise WeakPassword()
    return password


def check_name(name: str) -> str:
    """A trimmed display name of 1 to 200 characters."""
    cleaned = check_text(name, field="name").strip()
    if not 1 <= len(cleaned) <= 200:
        raise InvalidValue(ErrorCode.INVALID_NAME, "name must be 1-200 characters", field="name")
    return cleaned


@dataclass(eq=False)
class Customer(AggregateRoot):
    """An account. Identity is the id; the e-mail is unique case-insensitively."""

    id: str
    email: Email
    name: str
    password_hash: str
    role: Role
    active: bool
    created_at: datetime
    version: int = 1

    @classmethod
    def register(
        cls, *, id: str, email: Email, name: str, password_hash: str, role: Role, now: datetime
    ) -> Customer:
        """A new, active account."""
        customer = cls(id, email, check_name(name), password_hash, role, True, now)
        customer.record(CustomerRegistered(customer_id=id, email=str(email), role=role.value))
        return customer

    def deactivate(self) -> None:
        """Stop the account from logging in and ordering (idempotent)."""
        if self.active:
            self.active = False
            self.version += 1
            self.record(CustomerDeactivated(customer_id=self.id))

    def activate(self) -> None:
        """Allow the account again (idempotent)."""
        if not self.active:
            self.active = True
            self.version += 1
            self.record(CustomerActivated(customer_id=self.id))

    def ensure_can_order(self) -> None:
        """Raise CustomerInactive unless the account may place orders."""
        if not self.active:
            raise CustomerInactive(self.id)
