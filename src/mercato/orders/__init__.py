"""The orders module: the Order aggregate, pricing, shipping and the checkout flow."""

from mercato.orders.domain import (
    Order,
    OrderNotFound,
    PricingService,
    ShippingCalculator,
    ShippingRates,
    Status,
)
from mercato.orders.service import NewLine, OrdersService

__all__ = [
    "NewLine",
    "Order",
    "OrderNotFound",
    "OrdersService",
    "PricingService",
    "ShippingCalculator",
    "ShippingRates",
    "Status",
]
