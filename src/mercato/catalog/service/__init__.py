"""Catalog use cases for staff and shoppers, and the stock operations orders rely on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mercato.catalog.domain import (
    Adjustment,
    Product,
    ProductConflict,
    ProductNotFound,
    ReservedLine,
    check_adjustment,
    check_opening_stock,
)
from mercato.catalog.events import ReservationExpired
from mercato.catalog.service.search import ProductSearch
from mercato.catalog.store import ProductRepository, StockRepository
from mercato.kernel.clock import utcnow
from mercato.kernel.ids import new_id
from mercato.kernel.money import Currency, Money
from mercato.platform.pagination import Page, page_of
from mercato.platform.uow import Transactor, UnitOfWork

_INITIAL_STOCK = "initial stock"


@dataclass(frozen=True, slots=True)
class ProductChanges:
    name: str | None = None
    description: str | None = None
    price_amount: int | None = None
    currency: str | None = None
    weight_grams: int | None = None
    active: bool | None = None

    def price(self, current: Money) -> Money | None:
        """The new price, or None if neither its amount nor its currency changes."""
        if self.price_amount is None and self.currency is None:
            return None
        amount = current.amount if self.price_amount is None else self.price_amount
        return Money.of(amount, Currency.validate(self.currency or current.currency))


class CatalogService:
    """The catalog module's use cases."""

    def __init__(self, transact: Transactor) -> None:
        self._transact = transact
        self.search = ProductSearch(transact)

    async def create_product(
        self,
        *,
        actor_id: str,
        sku: str,
        name: str,
        description: str,
        price_amount: int,
        currency: str,
        weight_grams: int,
        initial_stock: int,
    ) -> Product:
        """Add a product; its opening stock is the first entry of its audit trail."""
        product = Product.create(
            id=new_id(),
            sku=sku,
            name=name,
            description=description,
            price=Money.of(price_amount, Currency.validate(currency)),
            weight_grams=weight_grams,
            initial_stock=0,
            now=utcnow(),
        )
        if initial_stock:
            # before the store, which would refuse a negative one as taking stock out (409)
            check_adjustment(check_opening_stock(initial_stock), _INITIAL_STOCK)

        async def work(uow: UnitOfWork) -> Product:
            await uow.repository(ProductRepository).add(product)
            if initial_stock:
                available = await _adjust(uow, product.id, initial_stock, _INITIAL_STOCK, actor_id)
                product.stock_adjusted(
                    delta=initial_stock,
                    reason=_INITIAL_STOCK,
                    available=available,
                    actor_id=actor_id,
                )
            return product

        return await self._transact(work)

    async def import_products(self, specs: list[dict[str, Any]], *, actor_id: str) -> int:
        """Add the products of ``specs`` (``create_product``'s arguments) whose SKUs are not in
        use, in one unit of work; how many were added."""
        now = utcnow()
        new = [_new_product(spec, now) for spec in specs]

        async def work(uow: UnitOfWork) -> int:
            repository = uow.repository(ProductRepository)
            taken = await repository.existing_skus([p.sku for p, _ in new])
            added = 0
            for product, stock in new:
                if product.sku in taken:
                    continue
                await repository.add(product)
                if stock:
                    available = await _adjust(uow, product.id, stock, _INITIAL_STOCK, actor_id)
                    product.stock_adjusted(
                        delta=stock, reason=_INITIAL_STOCK, available=available, actor_id=actor_id
                    )
                added += 1
            return added

        return await self._transact(work)

    async def update_product(
        self, product_id: str, changes: ProductChanges, *, expected_version: int | None
    ) -> Product:
        """Change a product's attributes; ProductConflict if ``expected_version`` is stale."""

        async def work(uow: UnitOfWork) -> Product:
            products = uow.repository(ProductRepository)
            # locked before it is read: a change without If-Match applies on top of whatever
            # was committed before it, instead of failing on a concurrent edit
            product = await products.get(product_id, lock=True)
            if expected_version is not None and expected_version != product.version:
                raise ProductConflict(product_id, current_version=product.version)
            product.update(
                now=utcnow(),
                name=changes.name,
                description=changes.description,
                price=changes.price(product.price),
                weight_grams=changes.weight_grams,
                active=changes.active,
            )
            await products.save(product)
            return product

        return await self._transact(work)

    async def adjust_stock(
        self, product_id: str, *, delta: int, reason: str, actor_id: str
    ) -> Product:
        """Add or remove available units with a reason; never below zero."""
        delta, reason = check_adjustment(delta, reason)

        async def work(uow: UnitOfWork) -> Product:
            available = await _adjust(uow, product_id, delta, reason, actor_id)
            product = await uow.repository(ProductRepository).get(product_id)
            product.stock_adjusted(
                delta=delta, reason=reason, available=available, actor_id=actor_id
            )
            return product

        return await self._transact(work)

    async def adjustments(
        self, product_id: str, *, after: str | None, limit: int
    ) -> Page[Adjustment]:
        """The stock audit trail of a product, oldest first."""

        async def read(uow: UnitOfWork) -> list[Adjustment]:
            if not await uow.repository(ProductRepository).exists(product_id):
                raise ProductNotFound(product_id)
            stock = uow.repository(StockRepository)
            return await stock.adjustments(product_id, after=after, limit=limit + 1)

        return page_of(await self._transact.read(read), limit)

    async def get_product(self, product_id: str, *, include_inactive: bool = False) -> Product:
        """One product (the console's edit form); inactive ones only when asked (staff)."""
        product = await self._transact.read(
            lambda uow: uow.repository(ProductRepository).get(product_id)
        )
        if not product.active and not include_inactive:
            raise ProductNotFound(product_id)
        return product

    async def product_view(self, product_id: str, *, staff: bool) -> dict[str, object]:
        """One product as the API shows it, read without building the aggregate."""
        shown = await self._transact.read(
            lambda uow: uow.repository(ProductRepository).view(product_id, staff=staff)
        )
        if shown is None:
            raise ProductNotFound(product_id)
        return shown

    async def list_products(
        self, *, text: str | None, after: str | None, limit: int, include_inactive: bool = False
    ) -> Page[Product]:
        """A page of products whose name or SKU contains ``text``."""
        rows = await self._transact.read(
            lambda uow: uow.repository(ProductRepository).page(
                text=text, after=after, limit=limit + 1, include_inactive=include_inactive
            )
        )
        return page_of(rows, limit)

    # -- used by the orders module, inside its unit of work (see StockForOrders) -------------

    async def describe_for_order(self, uow: UnitOfWork, product_id: str) -> ReservedLine:
        """An active product's name, SKU, price and weight, for an order line."""
        return await uow.repository(ProductRepository).describe(product_id)

    async def reserve(
        self, uow: UnitOfWork, order_id: str, quantities: dict[str, int], *, expires_at: datetime
    ) -> list[ReservedLine]:
        """Hold stock for every line of an order, all or nothing, at current prices."""
        return await uow.repository(StockRepository).reserve(
            order_id, quantities, expires_at=expires_at, now=utcnow()
        )

    async def commit_reservation(self, uow: UnitOfWork, order_id: str) -> None:
        """Turn an order's held stock into sold stock (the order was paid)."""
        await uow.repository(StockRepository).commit(order_id)

    async def release_reservation(
        self, uow: UnitOfWork, order_id: str, *, expired: bool = False
    ) -> None:
        """Give an order's held stock back (payment failed or, with ``expired``, the hold ran out).

        An expiry is recorded as one ``ReservationExpired`` event per product, so the stock
        movement the sweeper made can be audited.
        """
        moved = await uow.repository(StockRepository).release(order_id)
        if expired:
            uow.add(
                *(
                    ReservationExpired(product_id=pid, order_id=order_id, quantity=qty)
                    for pid, qty in moved
                )
            )

    async def expired_reservations(self, *, limit: int) -> list[str]:
        """Ids of orders whose stock reservations have expired."""
        now = utcnow()
        return await self._transact.read(
            lambda uow: uow.repository(StockRepository).expired_orders(now=now, limit=limit)
        )

    async def return_stock(self, uow: UnitOfWork, order_id: str) -> None:
        """Give a cancelled paid order's sold units back to available stock."""
        await uow.repository(StockRepository).give_back(order_id)


def _new_product(spec: dict[str, Any], now: datetime) -> tuple[Product, int]:
    product = Product.create(
        id=new_id(),
        sku=spec["sku"],
        name=spec["name"],
        description=spec["description"],
        price=Money.of(spec["price_amount"], Currency.validate(spec["currency"])),
        weight_grams=spec["weight_grams"],
        initial_stock=0,
        now=now,
    )
    return product, check_opening_stock(spec["initial_stock"])


async def _adjust(uow: UnitOfWork, product_id: str, delta: int, reason: str, actor_id: str) -> int:
    return await uow.repository(StockRepository).adjust(
        product_id, delta=delta, reason=reason, actor_id=actor_id, now=utcnow()
    )
