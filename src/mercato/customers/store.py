"""Customer persistence: the ``customers_customers`` table and the account repository."""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence

import sqlalchemy as sa

from mercato.customers.domain import Customer, CustomerConflict, CustomerNotFound, EmailTaken, Role
from mercato.kernel.values import Email
from mercato.platform.db import Row, UniqueViolation, metadata, sql
from mercato.platform.uow import TrackingRepository

customers = sa.Table(
    "customers_customers",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
)

_c = customers.c
_INSERT = sql(sa.insert(customers).values({c.name: sa.bindparam(c.name) for c in customers.c}))
_BY_ID = sql(sa.select(customers).where(_c.id == sa.bindparam("id")))
_BY_ID_FOR_UPDATE = sql(sa.select(customers).where(_c.id == sa.bindparam("id")).with_for_update())
_BY_EMAIL = sql(sa.select(customers).where(_c.email == sa.bindparam("email")))
_AUTHORITY = sql(sa.select(_c.role, _c.active).where(_c.id == sa.bindparam("id")))
# Several accounts' authority at once: the ids as one array (PostgreSQL) or JSON list (SQLite)
_PG_AUTHORITIES = sql(
    sa.text("SELECT id, role, active FROM customers_customers WHERE id = ANY(CAST(:ids AS text[]))")
)
_SQLITE_AUTHORITIES = sql(
    sa.text(
        "SELECT id, role, active FROM customers_customers"
        " WHERE id IN (SELECT value FROM json_each(:ids))"
    )
)
_ACTIVE = sql(sa.select(_c.active).where(_c.id == sa.bindparam("id")).with_for_update(read=True))
_UPDATE = sql(
    sa.update(customers)
    .where(_c.id == sa.bindparam("id"), _c.version == sa.bindparam("expected"))
    .values(active=sa.bindparam("active"), version=sa.bindparam("version"))
)
# Every active staff row, locked in id order: two deactivations of different staff accounts
# queue here instead of each seeing the other still active.
_ACTIVE_STAFF_FOR_UPDATE = sql(
    sa.select(_c.id)
    .where(_c.role == Role.STAFF.value, _c.active.is_(True))
    .order_by(_c.id)
    .with_for_update()
)
_PAGE = sql(
    sa.select(customers)
    .where(_c.id > sa.bindparam("after"))
    .order_by(_c.id)
    .limit(sa.bindparam("limit"))
)


def customer_row(customer: Customer) -> dict[str, object]:
    """The ``customers_customers`` row of an account."""
    return {
        "id": customer.id,
        "email": str(customer.email),
        "name": customer.name,
        "password_hash": customer.password_hash,
        "role": customer.role.value,
        "active": customer.active,
        "created_at": customer.created_at,
        "version": customer.version,
    }


def customer_from_row(row: Row) -> Customer:
    """The account a ``customers_customers`` row holds."""
    return Customer(
        id=row["id"],
        email=Email(row["email"]),
        name=row["name"],
        password_hash=row["password_hash"],
        role=Role(row["role"]),
        active=bool(row["active"]),
        created_at=row["created_at"],
        version=row["version"],
    )


_SEARCH = sql(
    sa.select(customers)
    .where(_c.id > sa.bindparam("after"), _c.email.like(sa.bindparam("pattern"), escape="\\"))
    .order_by(_c.id)
    .limit(sa.bindparam("limit"))
)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching e-mails that contain ``text`` literally (lower-cased)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class CustomerRepository(TrackingRepository[Customer]):
    """Accounts; a save is guarded by the version the account was loaded with."""

    __slots__ = ()

    async def get(self, customer_id: str, *, lock: bool = False) -> Customer:
        """The customer with this id, or CustomerNotFound; ``lock`` row-locks it until commit."""
        row = await self.conn.fetchrow(_BY_ID_FOR_UPDATE if lock else _BY_ID, id=customer_id)
        if row is None:
            raise CustomerNotFound(customer_id)
        return self._track(customer_from_row(row))

    async def add(self, customer: Customer) -> None:
        """Insert a new customer; EmailTaken if the e-mail is in use."""
        try:
            await self.conn.execute(_INSERT, **customer_row(customer))
        except UniqueViolation as exc:
            if exc.mentions("email"):
                raise EmailTaken() from None
            raise
        self._track_new(customer)

    async def by_email(self, email: Email) -> Customer | None:
        """The customer with this (normalised) e-mail, or None."""
        row = await self.conn.fetchrow(_BY_EMAIL, email=str(email))
        return None if row is None else self._track(customer_from_row(row))

    async def page(
        self, *, after: str | None, limit: int, text: str | None = None
    ) -> list[Customer]:
        """Up to ``limit`` customers with ids after ``after``, in id order; with ``text``, only
        those whose e-mail contains it."""
        if text:
            pattern = like_pattern(text)
            rows = await self.conn.fetch(_SEARCH, after=after or "", limit=limit, pattern=pattern)
        else:
            rows = await self.conn.fetch(_PAGE, after=after or "", limit=limit)
        return [self._track(customer_from_row(r)) for r in rows]

    async def is_active(self, customer_id: str) -> bool | None:
        """Whether the customer is active (None if unknown), share-locked until commit."""
        value = await self.conn.fetchval(_ACTIVE, id=customer_id)
        return None if value is None else bool(value)

    async def authority(self, customer_id: str) -> tuple[Role, bool] | None:
        """The customer's role and whether it is active (None if unknown)."""
        row = await self.conn.fetchrow(_AUTHORITY, id=customer_id)
        return None if row is None else (Role(row["role"]), bool(row["active"]))

    async def authorities(self, customer_ids: Sequence[str]) -> dict[str, tuple[Role, bool]]:
        """The role and whether it is active of each of these customers that exists."""
        if self.conn.dialect == "postgresql":
            rows = await self.conn.fetch(_PG_AUTHORITIES, ids=list(customer_ids))
        else:
            rows = await self.conn.fetch(_SQLITE_AUTHORITIES, ids=json.dumps(list(customer_ids)))
        return {row["id"]: (Role(row["role"]), bool(row["active"])) for row in rows}

    def _token(self, aggregate: Customer) -> Hashable:
        return aggregate.version

    async def _write(self, aggregate: Customer, *, expected: Hashable) -> bool:
        changed = await self.conn.execute(
            _UPDATE,
            id=aggregate.id,
            expected=expected,
            active=aggregate.active,
            version=aggregate.version,
        )
        return changed == 1

    async def _conflict(self, aggregate: Customer) -> Exception:
        return CustomerConflict(aggregate.id)

    async def lock_active_staff(self) -> list[str]:
        """The ids of the active staff accounts, locked until commit."""
        rows = await self.conn.fetch(_ACTIVE_STAFF_FOR_UPDATE)
        return [str(r["id"]) for r in rows]
