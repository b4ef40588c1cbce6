"""The Order aggregate, its errors, and the pricing and shipping domain services."""

from mercato.orders.domain.errors import (
    CANCELLABLE,
    CheckoutAbandoned,
    CheckoutInProgress,
    ErrorCode,
    InvalidTransition,
    NotOwner,
    OrderConflict,
    OrderNotDraft,
    OrderNotFound,
    Status,
)
from mercato.orders.domain.order import MAX_LINES, Order
from mercato.orders.domain.pricing import (
    OrderLine,
    PricingService,
    ProductInfo,
    ShippingCalculator,
    ShippingRates,
    Totals,
    discount_on,
    merchandise,
)

__all__ = [
    "CANCELLABLE",
    "MAX_LINES",
    "CheckoutAbandoned",
    "CheckoutInProgress",
    "ErrorCode",
    "InvalidTransition",
    "NotOwner",
    "Order",
    "OrderConflict",
    "OrderLine",
    "OrderNotDraft",
    "OrderNotFound",
    "PricingService",
    "ProductInfo",
    "ShippingCalculator",
    "ShippingRates",
    "Status",
    "Totals",
    "discount_on",
    "merchandise",
]
