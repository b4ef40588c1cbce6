"""Customer use cases: register, log in, look up, (de)activate, create staff."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from mercato.customers import passwords
from mercato.customers.domain import (
    CannotDeactivateSelf,
    CommonPassword,
    Customer,
    CustomerInactive,
    CustomerNotFound,
    InvalidCredentials,
    LastActiveStaff,
    Role,
    check_password,
)
from mercato.customers.store import CustomerRepository
from mercato.kernel.clock import utcnow
from mercato.kernel.errors import InvalidValue
from mercato.kernel.ids import new_id
from mercato.kernel.values import Email
from mercato.platform.pagination import Page, page_of
from mercato.platform.security import Account, PasswordHashing, Principal, TokenService
from mercato.platform.security import Role as TokenRole
from mercato.platform.uow import Transactor, UnitOfWork


class LoginGuard(Protocol):
    """What login needs of the throttle (:class:`mercato.platform.throttle.Guard`): one
    attempt by a subject from an address, refused when either is over its limit."""

    def attempt(
        self, subject: str, *, address: str | None, failed: Callable[[Exception], bool]
    ) -> AbstractAsyncContextManager[None]: ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    customer: Customer


class CustomersService:
    """The customers module's use cases."""

    def __init__(
        self,
        transact: Transactor,
        *,
        hashing: PasswordHashing,
        tokens: TokenService,
        login_guard: LoginGuard,
    ) -> None:
        self._transact = transact
        self._hashing = hashing
        self._tokens = tokens
        self._login_guard = login_guard

    async def register(
        self, *, email: str, password: str, name: str, role: Role = Role.CUSTOMER
    ) -> Customer:
        """Create an account; EmailTaken if the e-mail (case-insensitive) is in use."""
        address = Email(email)
        if await passwords.is_common(check_password(password)):
            raise CommonPassword()
        password_hash = await self._hashing.hash(password)

        async def work(uow: UnitOfWork) -> Customer:
            customer = Customer.register(
                id=new_id(),
                email=address,
                name=name,
                password_hash=password_hash,
                role=role,
                now=utcnow(),
            )
            await uow.repository(CustomerRepository).add(customer)
            return customer

        return await self._transact(work)

    async def login(self, *, email: str, password: str, client: str | None = None) -> IssuedToken:
        """A token for valid credentials of an active account; InvalidCredentials otherwise.

        Failures are throttled per e-mail (known or not, alike) and per ``client`` address
        (TooManyAttempts); a successful login clears the e-mail's failures.
        """
        try:
            address: Email | None = Email(email)
        except InvalidValue:
            address = None
        subject = str(address) if address else email.strip().lower()
        attempt = self._login_guard.attempt(
            subject, address=client, failed=lambda exc: isinstance(exc, InvalidCredentials)
        )
        async with attempt:
            return await self._verify(address, password)

    async def _verify(self, address: Email | None, password: str) -> IssuedToken:
        customer = None
        if address is not None:
            customer = await self._transact.read(
                lambda uow: uow.repository(CustomerRepository).by_email(address)
            )
        stored = customer.password_hash if customer else None
        if not await self._hashing.verify(stored, password) or customer is None:
            raise InvalidCredentials()
        if not customer.active:
            raise CustomerInactive(customer.id)
        token, ttl = self._tokens.issue(Principal(customer.id, TokenRole(customer.role.value)))
        return IssuedToken(token, ttl, customer)

    async def get(self, customer_id: str) -> Customer:
        """The customer; CustomerNotFound if there is none."""
        return await self._transact.read(
            lambda uow: uow.repository(CustomerRepository).get(customer_id)
        )

    async def list_accounts(
        self, *, after: str | None, limit: int, text: str | None = None
    ) -> Page[Customer]:
        """A page of accounts in registration order; with ``text``, whose e-mail contains it."""
        rows = await self._transact.read(
            lambda uow: uow.repository(CustomerRepository).page(
                after=after, limit=limit + 1, text=text
            )
        )
        return page_of(rows, limit)

    async def find_by_email(self, email: str) -> Customer | None:
        """The account with this e-mail (any case), or None (also for a malformed e-mail)."""
        try:
            address = Email(email)
        except InvalidValue:
            return None
        return await self._transact.read(
            lambda uow: uow.repository(CustomerRepository).by_email(address)
        )

    async def set_active(
        self, customer_id: str, *, active: bool, actor_id: str | None = None
    ) -> Customer:
        """Activate or deactivate an account.

        Staff (``actor_id``) cannot deactivate themselves (CannotDeactivateSelf), and nobody can
        deactivate the last active staff account (LastActiveStaff).
        """
        if not active and customer_id == actor_id:
            raise CannotDeactivateSelf(customer_id)

        async def work(uow: UnitOfWork) -> Customer:
            customers = uow.repository(CustomerRepository)
            # the staff rows are locked before the target, always in id order, so concurrent
            # deactivations cannot deadlock and each counts what the other committed
            staff = await customers.lock_active_staff() if not active else []
            customer = await customers.get(customer_id, lock=True)
            if staff == [customer.id]:
                raise LastActiveStaff(customer_id)
            if active:
                customer.activate()
            else:
                customer.deactivate()
            await customers.save(customer)
            return customer

        return await self._transact(work)

    async def account(self, customer_id: str) -> Account | None:
        """The authority the account holds now (role, active), or None if there is none."""
        found = await self._transact.read(
            lambda uow: uow.repository(CustomerRepository).authority(customer_id)
        )
        if found is None:
            return None
        role, active = found
        return Account(TokenRole(role.value), active)

    async def accounts(self, customer_ids: Sequence[str]) -> dict[str, Account]:
        """The authority each of these accounts holds now; an unknown one is left out."""
        found = await self._transact.read(
            lambda uow: uow.repository(CustomerRepository).authorities(customer_ids)
        )
        return {
            id_: Account(TokenRole(role.value), active) for id_, (role, active) in found.items()
        }

    async def ensure_can_order(self, uow: UnitOfWork, customer_id: str) -> None:
        """Inside the caller's unit of work: raise unless the customer exists and is active."""
        active = await uow.repository(CustomerRepository).is_active(customer_id)
        if active is None:
            raise CustomerNotFound(customer_id)
        if not active:
            raise CustomerInactive(customer_id)
