"""Products on the unit of work: the Product aggregates, their guarded saves, and the read model."""

from __future__ import annotations

from collections.abc import Hashable
from typing import cast

import orjson
import sqlalchemy as sa

from mercato.catalog.domain import (
    Product,
    ProductConflict,
    ProductInactive,
    ProductNotFound,
    ReservedLine,
    SkuTaken,
)
from mercato.catalog.store.tables import (
    line_from_row,
    product_from_row,
    product_row,
    product_view,
    products,
)
from mercato.platform.db import UniqueViolation, sql
from mercato.platform.uow import TrackingRepository

_p = products.c
_bind = sa.bindparam

_INSERT = sql(sa.insert(products).values({c.name: _bind(c.name) for c in products.c}))
_BY_ID = sql(sa.select(products).where(_p.id == _bind("id")))
_BY_ID_FOR_UPDATE = sql(sa.select(products).where(_p.id == _bind("id")).with_for_update())
_UPDATE = sql(
    sa.update(products)
    .where(_p.id == _bind("id"), _p.version == _bind("expected"))
    .values(
        name=_bind("name"),
        description=_bind("description"),
        price_amount=_bind("price_amount"),
        currency=_bind("currency"),
        weight_grams=_bind("weight_grams"),
        active=_bind("active"),
        updated_at=_bind("updated_at"),
        version=_bind("version"),
    )
)
_VERSION = sql(sa.select(_p.version).where(_p.id == _bind("id")))
_page_filter = sa.and_(
    _p.id > _bind("after"),
    sa.or_(_p.active == sa.true(), _bind("include_inactive", type_=sa.Boolean)),
    sa.or_(
        sa.func.lower(_p.name).like(_bind("pattern"), escape="\\"),
        sa.func.lower(_p.sku).like(_bind("pattern"), escape="\\"),
    ),
)
_PAGE = sql(sa.select(products).where(_page_filter).order_by(_p.id).limit(_bind("limit")))
_SNAPSHOT = sql(
    sa.select(
        _p.id, _p.sku, _p.name, _p.price_amount, _p.currency, _p.weight_grams, _p.active
    ).where(_p.id == _bind("id"))
)
_PG_SKUS = sql(sa.text("SELECT sku FROM catalog_products WHERE sku = ANY(CAST(:skus AS text[]))"))
_SQLITE_SKUS = sql(
    sa.text("SELECT sku FROM catalog_products WHERE sku IN (SELECT value FROM json_each(:skus))")
)
# what a save may change: the counters move only by the stock statements, the rest never
_IMMUTABLE = ("sku", "available", "reserved", "sold", "created_at")


def like_pattern(text: str | None) -> str:
    """A case-insensitive LIKE pattern matching ``text`` anywhere, wildcards escaped."""
    if not text:
        return "%"
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ProductRepository(TrackingRepository[Product]):
    """The catalog's products; a save is guarded by the version the product was loaded with."""

    __slots__ = ()

    async def get(self, product_id: str, *, lock: bool = False) -> Product:
        """The product, or ProductNotFound; ``lock`` row-locks it until commit (a product is one
        row, so the locking read itself sees the lock holder's committed change)."""
        row = await self.conn.fetchrow(_BY_ID_FOR_UPDATE if lock else _BY_ID, id=product_id)
        if row is None:
            raise ProductNotFound(product_id)
        return self._track(product_from_row(row))

    async def add(self, product: Product) -> None:
        """Insert a new product; SkuTaken if its SKU is in use."""
        try:
            await self.conn.execute(_INSERT, **product_row(product))
        except UniqueViolation as exc:
            if exc.mentions("sku"):
                raise SkuTaken(product.sku) from None
            raise
        self._track_new(product)

    async def exists(self, product_id: str) -> bool:
        """Whether there is a product with this id."""
        return await self.conn.fetchval(_VERSION, id=product_id) is not None

    async def existing_skus(self, skus: list[str]) -> set[str]:
        """Which of ``skus`` are in use."""
        if self.conn.dialect == "postgresql":
            rows = await self.conn.fetch(_PG_SKUS, skus=skus)
        else:
            rows = await self.conn.fetch(_SQLITE_SKUS, skus=orjson.dumps(skus).decode())
        return {row["sku"] for row in rows}

    async def view(self, product_id: str, *, staff: bool) -> dict[str, object] | None:
        """The API view of a product, or None; inactive products only for staff."""
        row = await self.conn.fetchrow(_BY_ID, id=product_id)
        if row is None or not (staff or row["active"]):
            return None
        return product_view(row, staff=staff)

    async def page(
        self, *, text: str | None, after: str | None, limit: int, include_inactive: bool
    ) -> list[Product]:
        """Up to ``limit`` products after ``after`` (id order) whose name or SKU has ``text``."""
        rows = await self.conn.fetch(
            _PAGE,
            after=after or "",
            limit=limit,
            pattern=like_pattern(text),
            include_inactive=include_inactive,
        )
        return [self._track(product_from_row(r)) for r in rows]

    async def describe(self, product_id: str) -> ReservedLine:
        """An active product's order-relevant attributes (ProductNotFound, ProductInactive)."""
        row = await self.conn.fetchrow(_SNAPSHOT, id=product_id)
        if row is None:
            raise ProductNotFound(product_id)
        if not row["active"]:
            raise ProductInactive(product_id)
        return line_from_row(row, quantity=0)

    def _token(self, aggregate: Product) -> Hashable:
        return aggregate.version

    async def _write(self, aggregate: Product, *, expected: Hashable) -> bool:
        fields = product_row(aggregate)
        for column in _IMMUTABLE:
            del fields[column]
        return await self.conn.execute(_UPDATE, expected=expected, **fields) == 1

    async def _conflict(self, aggregate: Product) -> Exception:
        current = await self.conn.fetchval(_VERSION, id=aggregate.id)
        seen = cast(int, self.loaded_token(aggregate))
        return ProductConflict(aggregate.id, current_version=current or seen)
