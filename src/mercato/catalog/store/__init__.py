"""Catalog persistence: the tables, the product repository and the stock repository."""

from mercato.catalog.store.product_store import ProductRepository
from mercato.catalog.store.stock_store import StockRepository
from mercato.catalog.store.tables import adjustments, products, reservations

__all__ = ["ProductRepository", "StockRepository", "adjustments", "products", "reservations"]
