"""The catalog module: products, stock and reservations. Its facade for other modules."""

from mercato.catalog.domain import (
    Adjustment,
    OutOfStock,
    Product,
    ProductInactive,
    ProductNotFound,
    ReservedLine,
)
from mercato.catalog.protocols import StockForOrders
from mercato.catalog.service import CatalogService, ProductChanges

__all__ = [
    "Adjustment",
    "CatalogService",
    "OutOfStock",
    "Product",
    "ProductChanges",
    "ProductInactive",
    "ProductNotFound",
    "ReservedLine",
    "StockForOrders",
]
