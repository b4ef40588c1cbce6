"""The catalog module: products, stock and reservations. Its facade for other modules."""

from mercato.catalog.domain import (
    OutOfStock,
    Product,
    ProductInactive,
    ProductNotFound,
    ReservedLine,
)
from mercato.catalog.protocols import StockForOrders
from mercato.catalog.service import CatalogService

__all__ = [
    "CatalogService",
    "OutOfStock",
    "Product",
    "ProductInactive",
    "ProductNotFound",
    "ReservedLine",
    "StockForOrders",
]
