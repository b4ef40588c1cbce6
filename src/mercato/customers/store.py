"""Customer persistence: the ``customers_customers`` table and its repository functions."""

from __future__ import annotations

import sqlalchemy as sa

from mercato.customers.domain import Customer, EmailTaken, Role
from mercato.kernel.values import Email
from mercato.platform.db import Connection, Row, UniqueViolation, metadata, sql

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


def _to_row(customer: Customer) -> dict[str, object]:
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


def _from_row(row: Row) -> Customer:
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


async def add(conn: Connection, customer: Customer) -> None:
    """Insert a new customer; EmailTaken if the e-mail is in use."""
    try:
        await conn.execute(_INSERT, **_to_row(customer))
    except UniqueViolation as exc:
        if exc.mentions("email"):
            raise EmailTaken() from None
        raise


async def get(conn: Connection, customer_id: str, *, for_update: bool = False) -> Customer | None:
    """The customer with this id, or None."""
    row = await conn.fetchrow(_BY_ID_FOR_UPDATE if for_update else _BY_ID, id=customer_id)
    return None if row is None else _from_row(row)


async def by_email(conn: Connection, email: Email) -> Customer | None:
    """The customer with this (normalised) e-mail, or None."""
    row = await conn.fetchrow(_BY_EMAIL, email=str(email))
    return None if row is None else _from_row(row)


async def is_active(conn: Connection, customer_id: str) -> bool | None:
    """Whether the customer is active (None if unknown), share-locked until commit."""
    value = await conn.fetchval(_ACTIVE, id=customer_id)
    return None if value is None else bool(value)


async def authority(conn: Connection, customer_id: str) -> tuple[Role, bool] | None:
    """The customer's role and whether it is active (None if unknown)."""
    row = await conn.fetchrow(_AUTHORITY, id=customer_id)
    return None if row is None else (Role(row["role"]), bool(row["active"]))


async def save(conn: Connection, customer: Customer, *, expected_version: int) -> bool:
    """Write the mutable fields if the stored version is still ``expected_version``."""
    changed = await conn.execute(
        _UPDATE,
        id=customer.id,
        expected=expected_version,
        active=customer.active,
        version=customer.version,
    )
    return changed == 1


async def page(
    conn: Connection, *, after: str | None, limit: int, text: str | None = None
) -> list[Customer]:
    """Up to ``limit`` customers with ids after ``after``, in id order; with ``text``, only
    those whose e-mail contains it."""
    if text:
        rows = await conn.fetch(_SEARCH, after=after or "", limit=limit, pattern=like_pattern(text))
    else:
        rows = await conn.fetch(_PAGE, after=after or "", limit=limit)
    return [_from_row(r) for r in rows]


async def lock_active_staff(conn: Connection) -> list[str]:
    """The ids of the active staff accounts, locked until commit."""
    rows = await conn.fetch(_ACTIVE_STAFF_FOR_UPDATE)
    return [str(r["id"]) for r in rows]
