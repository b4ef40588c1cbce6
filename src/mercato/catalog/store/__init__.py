"""Catalog persistence: the tables, the product, stock and search repositories."""

from mercato.catalog.store.product_store import ProductRepository
from mercato.catalog.store.search_store import Lexical, SearchRepository
from mercato.catalog.store.stock_store import StockRepository
from mercato.catalog.store.tables import adjustments, products, reservations

__all__ = [
    "Lexical",
    "ProductRepository",
    "SearchRepository",
    "StockRepository",
    "adjustments",
    "products",
    "reservations",
]
