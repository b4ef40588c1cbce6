"""In-memory accounts, and a login guard that counts failures like the throttle."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from mercato.customers.domain import Customer, CustomerNotFound, EmailTaken, Role
from mercato.customers.store import CustomerRepository, customer_from_row, customer_row
from mercato.kernel.values import Email
from mercato.platform.throttle import TooManyAttempts
from tests.fakes import fake_for, tables_of


@fake_for(CustomerRepository)
class FakeCustomerRepository(CustomerRepository):
    __slots__ = ("_uow",)  # its rows are its unit of work's tables

    @property
    def _rows(self) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = tables_of(self._uow).setdefault("customers", {})
        return rows

    async def get(self, customer_id: str, *, lock: bool = False) -> Customer:
        row = self._rows.get(customer_id)
        if row is None:
            raise CustomerNotFound(customer_id)
        return self._track(customer_from_row(row))

    async def add(self, customer: Customer) -> None:
        if any(row["email"] == str(customer.email) for row in self._rows.values()):
            raise EmailTaken()
        self._rows[customer.id] = customer_row(customer)
        self._track_new(customer)

    async def by_email(self, email: Email) -> Customer | None:
        found = [row for row in self._rows.values() if row["email"] == str(email)]
        return self._track(customer_from_row(found[0])) if found else None

    async def page(
        self, *, after: str | None, limit: int, text: str | None = None
    ) -> list[Customer]:
        later = [
            row
            for key, row in sorted(self._rows.items())
            if key > (after or "") and (not text or text.lower() in row["email"])
        ]
        return [self._track(customer_from_row(row)) for row in later[:limit]]

    async def lock_active_staff(self) -> list[str]:
        return sorted(
            key
            for key, row in self._rows.items()
            if row["role"] == Role.STAFF.value and row["active"]
        )

    async def is_active(self, customer_id: str) -> bool | None:
        row = self._rows.get(customer_id)
        return None if row is None else bool(row["active"])

    async def authority(self, customer_id: str) -> tuple[Role, bool] | None:
        row = self._rows.get(customer_id)
        return None if row is None else (Role(row["role"]), bool(row["active"]))

    async def authorities(self, customer_ids: Sequence[str]) -> dict[str, tuple[Role, bool]]:
        return {
            id_: (Role(row["role"]), bool(row["active"]))
            for id_ in customer_ids
            if (row := self._rows.get(id_)) is not None
        }

    async def _write(self, aggregate: Customer, *, expected: Hashable) -> bool:
        row = self._rows[aggregate.id]
        if row["version"] != expected:
            return False
        row.update(active=aggregate.active, version=aggregate.version)
        return True


class FakeLoginGuard:
    """Refuses a subject or an address after ``limit`` failed attempts; a success clears the
    subject's failures (the throttle's rules, without its time windows)."""

    def __init__(self, *, limit: int = 3) -> None:
        self.limit = limit
        self.failures: Counter[str] = Counter()

    @asynccontextmanager
    async def attempt(
        self, subject: str, *, address: str | None, failed: Callable[[Exception], bool]
    ) -> AsyncIterator[None]:
        keys = [f"subject:{subject}"] + ([f"address:{address}"] if address else [])
        if any(self.failures[key] >= self.limit for key in keys):
            raise TooManyAttempts(retry_after=60)
        try:
            yield
        except Exception as exc:
            if failed(exc):
                self.failures.update(keys)
            raise
        del self.failures[keys[0]]
